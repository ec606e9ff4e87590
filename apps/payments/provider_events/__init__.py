"""What a payment provider tells us after the fact: late successes, failures, refunds made at the
provider, disputes, and a provider's own review holds and voids (Authorize.Net). The webhook processor (apps.webhooks) turns each verified provider event into
`ProviderChange`s and applies them here.

Every function runs inside the caller's transaction (like `ledger_post` and `audit_record`): the
caller locks the payment with `payment_lock_for_change`, applies the changes and records that the
provider event was handled, all in one commit, so an event is applied once or not at all. The
changes go through the same state machine, ledger postings, audit records and outbox events as
Paydesk's own operations. A change that doesn't fit the payment's state is not forced: the function
returns an `Outcome` that says nothing was applied (an older event arriving late, or news the
payment already shows), raises `ProviderChangeDeferred` when a later attempt may find the payment
ready (its success not yet recorded, one of our own refunds still in flight), and raises
`ProviderChangeRejected` when the provider contradicts the books in a way only a person can settle.

Modules: `changes` (the change, its outcome, finding its payment), `settling` (money and disputes),
`holds` (review holds and voids), `applying` (the dispatch by kind).
"""

from apps.payments.provider_events.applying import payment_apply_provider_change
from apps.payments.provider_events.changes import (
    STATUS_CHANGES,
    ChangeKind,
    Outcome,
    ProviderChange,
    ProviderChangeDeferred,
    ProviderChangeRejected,
    payment_lock_for_change,
)

__all__ = [
    "STATUS_CHANGES",
    "ChangeKind",
    "Outcome",
    "ProviderChange",
    "ProviderChangeDeferred",
    "ProviderChangeRejected",
    "payment_apply_provider_change",
    "payment_lock_for_change",
]
