"""The payout state machine: the one place that knows which moves are legal.

    pending ─► in_transit ─► paid
       │            └──────► failed   (reversed: the amount back into the wallet)
       ├─► failed                    (refused before it left: reversed)
       └─► canceled                  (by its owner, or a reviewer's denial: reversed)

`transition` is called by services while they hold the payout's row lock; an illegal move is a
409 `payout_unexpected_state` for the client.
"""

from __future__ import annotations

from apps.payouts.errors import PayoutUnexpectedState
from apps.payouts.models import Payout

S = Payout.Status

ALLOWED: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.IN_TRANSIT, S.FAILED, S.CANCELED}),
    S.IN_TRANSIT: frozenset({S.PAID, S.FAILED}),
    S.PAID: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
}

TERMINAL = frozenset(status for status, moves in ALLOWED.items() if not moves)


def can_move(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, frozenset())


def transition(payout: Payout, target: str, *, action: str) -> str:
    """Checks that the (locked) payout may move to `target` and returns its current status; the
    caller writes the move (a money function, or `payout_move`) in the same transaction."""
    if not can_move(payout.status, target):
        raise PayoutUnexpectedState(
            f"Cannot {action} a payout whose status is '{payout.status}'.",
            details={"status": payout.status, "action": action},
        )
    return payout.status
