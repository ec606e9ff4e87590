"""Ledger errors are bugs in the caller, never a client's mistake.

They are deliberately not `ApplicationError`s: a service that tries to post an unbalanced entry
must fail loudly as a 500 (logged, rolled back), not be told to the client as a 400.
"""


class LedgerError(Exception):
    pass


class UnbalancedEntry(LedgerError):
    pass


class MixedCurrencyEntry(LedgerError):
    pass
