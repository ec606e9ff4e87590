"""Every write to payments: create, capture, cancel, refund, review decisions, retries, reconcile.

This package is its public API; its modules hold one capability each (`creating`, `steps`: the
gateway step and its retries, `capture`, `refunds`, `review`, `reconciliation`) and share
`booking` (state changes with their ledger postings) and `payloads`.

A payment moves in steps that each own one durable transaction, with the network in between:

    1. open    (transaction): lock/check, write the payment `pending` with the operation to do
    2. gateway (no transaction, no row locks): authorize / capture / void with an idempotency key
               derived from the payment, so any repeat of the call is the same call at the gateway;
               made through `apps.gateways.calls.gateway_call` (circuit breaker, metric)
    3. settle  (transaction): lock the payment, record the call (its GatewayAttempt and raw log),
               apply the gateway's answer through the state machine, with its ledger entry, audit
               row and outbox event

If step 3 can't be written, the payment is put in `reconcile` (or, if even that fails, it stays
`pending`/`processing` and `reconcile_payments` moves it there); reconciliation asks the gateway
what happened and settles it. A retryable gateway failure leaves the payment `processing` and a
Celery task repeats step 2–3 with exponential backoff and jitter; after the last attempt the work
is dead-lettered and the payment fails with `gateway_unavailable`.

A card payment accepted with `Prefer: respond-async` stops after step 1, whose transaction also
writes the outbox event `payment.processing_requested`; its consumer (`apps.payments.consumers`)
queues `tasks.run_payment_step` on the payments queue, and a worker runs steps 2 and 3 with the same
`run_pending_operation` the request would have run. A worker killed mid-step has its task
redelivered (acks_late): the step runs again with the same idempotency key, so it charges once.

Wallet payments need no gateway: they are opened and settled in one transaction. An uncaptured
wallet payment holds its funds in the `wallet_holds` system account.
"""

from __future__ import annotations

from apps.payments.services.booking import (
    begin_operation,
    capture_card_payment,
    complete_refund,
    open_review,
    payment_move,
)
from apps.payments.services.capture import payment_cancel, payment_capture
from apps.payments.services.creating import (
    PROCESSING_REQUESTED,
    TOKEN_PATTERN,
    WALLET_PATTERN,
    PaymentMethod,
    card_payment_open,
    parse_payment_method,
    payment_create,
)
from apps.payments.services.payloads import payment_payload
from apps.payments.services.reconciliation import ReconcileReport, payment_reconcile, payments_reconcile_due
from apps.payments.services.refunds import payment_refund, refund_open, refund_settle, run_refund
from apps.payments.services.review import open_deposit_review, review_decide
from apps.payments.services.steps import (
    operation_key,
    payment_mark_reconcile,
    payment_settle_operation,
    retry_delay,
    run_pending_operation,
)

__all__ = [
    "ReconcileReport",
    "begin_operation",
    "PROCESSING_REQUESTED",
    "PaymentMethod",
    "TOKEN_PATTERN",
    "WALLET_PATTERN",
    "capture_card_payment",
    "card_payment_open",
    "complete_refund",
    "open_deposit_review",
    "open_review",
    "operation_key",
    "parse_payment_method",
    "payment_cancel",
    "payment_capture",
    "payment_create",
    "payment_mark_reconcile",
    "payment_move",
    "payment_payload",
    "payment_reconcile",
    "payments_reconcile_due",
    "payment_refund",
    "payment_settle_operation",
    "refund_open",
    "refund_settle",
    "retry_delay",
    "review_decide",
    "run_pending_operation",
    "run_refund",
]
