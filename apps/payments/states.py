"""The payment state machine: the one place that knows which moves are legal.

    pending ─► processing ─► … (a gateway step is under way or waiting for its retry)
       │            ├─► requires_capture ─► processing(capture) ─► succeeded ─► refunded
       │            ├─► in_review ─► processing(capture|void) ─► succeeded | canceled
       │            ├─► succeeded, failed
       │            └─► reconcile ─► (whatever the gateway says happened)
       └─► succeeded | in_review | requires_capture | failed   (wallet payments, no gateway)

`transition` is called by services while they hold the payment's row lock; an illegal move is a
409 `payment_unexpected_state` for the client.
"""

from __future__ import annotations

from apps.payments.errors import PaymentUnexpectedState
from apps.payments.models import Payment

S = Payment.Status

ALLOWED: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PROCESSING, S.IN_REVIEW, S.REQUIRES_CAPTURE, S.SUCCEEDED, S.FAILED, S.RECONCILE}),
    S.PROCESSING: frozenset(
        {S.PROCESSING, S.IN_REVIEW, S.REQUIRES_CAPTURE, S.SUCCEEDED, S.FAILED, S.CANCELED, S.RECONCILE}
    ),
    S.IN_REVIEW: frozenset({S.PROCESSING, S.SUCCEEDED, S.CANCELED}),
    S.REQUIRES_CAPTURE: frozenset({S.PROCESSING, S.SUCCEEDED, S.CANCELED}),
    S.SUCCEEDED: frozenset({S.SUCCEEDED, S.REFUNDED}),  # a partial refund keeps it succeeded
    S.RECONCILE: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELED, S.REQUIRES_CAPTURE, S.IN_REVIEW}),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
    S.REFUNDED: frozenset(),
}

TERMINAL = frozenset(status for status, moves in ALLOWED.items() if not moves)


def can_move(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, frozenset())


def transition(payment: Payment, target: str, *, action: str) -> str:
    """Moves the (locked) payment to `target` in memory and returns the previous status.

    The caller saves it in the same transaction, with its ledger entry, audit row and event.
    """
    if not can_move(payment.status, target):
        raise PaymentUnexpectedState(
            f"Cannot {action} a payment whose status is '{payment.status}'.",
            details={"status": payment.status, "action": action},
        )
    previous = payment.status
    payment.status = target
    return previous
