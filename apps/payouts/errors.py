"""What payout services refuse, as API.md names it. Rendered by apps.core.exception_handler.

Refusals shared with other money (a frozen wallet, a short balance, a review decided by its owner
or twice) are the wallets' and payments' own errors, raised as they are."""

from apps.core.errors import Conflict, InvalidRequest, NotFound


class PayoutNotFound(NotFound):
    default_message = "No such payout."


class PayoutUnexpectedState(Conflict):
    code = "payout_unexpected_state"
    default_message = "The payout is not in a state that allows this."


class DestinationInvalid(InvalidRequest):
    code = "destination_invalid"
    default_message = (
        "No such destination: the payment gateway does not know this bank account token "
        "(the simulated gateway knows btok_success and btok_accountClosed)."
    )


class PayoutsUnsupported(InvalidRequest):
    code = "payouts_unsupported"
    default_message = "The configured payment gateway does not support payouts."
