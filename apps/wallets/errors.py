"""What wallet services refuse, as API.md names it. Rendered by apps.core.exception_handler."""

from apps.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied


class WalletExists(Conflict):
    code = "wallet_exists"
    default_message = "You already have a wallet in this currency."


class WalletNotFound(NotFound):
    default_message = "No such wallet."


class DepositNotFound(NotFound):
    default_message = "No such deposit."


class SameWallet(ApplicationError):
    code = "same_wallet"
    default_message = "The source and destination wallets must differ."


class CurrencyMismatch(ApplicationError):
    code = "currency_mismatch"
    default_message = "The wallets hold different currencies."


class WalletInactive(ApplicationError):
    code = "wallet_inactive"
    default_message = "The wallet is frozen: it can neither send nor receive money."


class InsufficientFunds(ApplicationError):
    code = "insufficient_funds"
    default_message = "The source wallet's balance is lower than the amount."


class StaffOnly(PermissionDenied):
    default_message = "Freezing or unfreezing wallets needs staff with the freeze_wallet permission."


class NoteRequired(ApplicationError):
    code = "parameter_missing"
    default_message = "A note saying why is required."
