"""The payouts app's public API: every write of a payout (the modules behind it are its own).

- `payout_create`, `payout_cancel` (creating): the owner's requests;
- `payout_send`, `payout_settle`, `payouts_due`, `payouts_sweep` (sending): the worker's side;
- `decide_payout_review` (review): a reviewer's decision on a payout held for review;
- `book_payout_paid`, `book_payout_reversal` (booking): the settling money movements, for a
  settlement that comes from elsewhere (a gateway's webhook, reconciliation), on a payout the
  caller has locked with `lock_payout` in its own transaction;
- `payout_payload`: what a payout's events say about it;
- `payout_lock_for_gateway`, `payout_apply_gateway_result` (gateway_news): a gateway's news of a payout
  (its webhooks), and `payouts_reconcile` (reconciling) asking the gateway about those stuck in transit.
"""

from apps.payouts.locks import lock_payout
from apps.payouts.services.booking import (
    audit_view,
    book_payout_paid,
    book_payout_reversal,
    payout_move,
    payout_payload,
)
from apps.payouts.services.creating import payout_cancel, payout_create, payout_destination
from apps.payouts.services.gateway_news import payout_apply_gateway_result, payout_lock_for_gateway
from apps.payouts.services.queueing import send_on_commit, send_payout_now
from apps.payouts.services.reconciling import PayoutReconciliation, payout_reconcile, payouts_reconcile
from apps.payouts.services.review import decide_payout_review
from apps.payouts.services.sending import (
    OPERATION,
    payout_gateway_key,
    payout_send,
    payout_settle,
    payouts_due,
    payouts_sweep,
)

__all__ = [
    "OPERATION",
    "PayoutReconciliation",
    "audit_view",
    "book_payout_paid",
    "book_payout_reversal",
    "decide_payout_review",
    "lock_payout",
    "payout_apply_gateway_result",
    "payout_lock_for_gateway",
    "payout_cancel",
    "payout_create",
    "payout_destination",
    "payout_gateway_key",
    "payout_move",
    "payout_payload",
    "payout_reconcile",
    "payout_send",
    "payout_settle",
    "payouts_due",
    "payouts_reconcile",
    "payouts_sweep",
    "send_on_commit",
    "send_payout_now",
]
