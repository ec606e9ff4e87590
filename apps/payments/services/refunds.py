"""Refunds: opened under the payment's lock, run at the gateway with the refund's id as the key."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.deferred import enqueue
from apps.gateways import GatewayError, GatewayResponseLost
from apps.gateways.calls import GatewayExchange, Outcome, gateway_call
from apps.payments.errors import PaymentUnexpectedState, RefundExceedsCaptured
from apps.payments.locks import lock_payment
from apps.payments.models import Payment, Refund
from apps.payments.services.booking import complete_refund
from apps.payments.services.steps import dead_letter_if_exhausted, retry_delay

S = Payment.Status


def payment_refund(
    *, actor: Actor, owner: User, payment_id: str, amount: int | None = None, reason: str = ""
) -> Refund:
    refund = refund_open(actor=actor, owner=owner, payment_id=payment_id, amount=amount, reason=reason)
    if refund.status != Refund.Status.PENDING:
        return refund
    return run_refund(actor=actor, refund_id=refund.pk)


@transaction.atomic(durable=True)
def refund_open(*, actor: Actor, owner: User, payment_id: str, amount: int | None, reason: str) -> Refund:
    payment = lock_payment(payment_id, owner=owner)
    if payment.status != S.SUCCEEDED:
        raise PaymentUnexpectedState(f"Cannot refund a payment whose status is '{payment.status}'.")
    in_flight = sum(payment.refunds.filter(status=Refund.Status.PENDING).values_list("amount", flat=True))
    refundable = payment.amount_captured - payment.amount_refunded - in_flight
    amount = refundable if amount is None else amount
    if amount > refundable or amount <= 0:
        raise RefundExceedsCaptured(
            f"amount {amount} exceeds the {refundable} that can still be refunded.", param="amount"
        )
    refund = Refund.objects.create(payment=payment, amount=amount, reason=reason[:500])
    if payment.method_type == Payment.MethodType.WALLET:
        complete_refund(actor=actor, payment=payment, refund=refund)
    # The audit chain's lock is taken last, after every row lock (see audit_record).
    audit_record(
        actor=actor,
        action="refund.create",
        entity_type="refund",
        entity_id=refund.pk,
        after={"payment": payment.pk, "amount": amount, "status": refund.status},
    )
    return refund


def run_refund(*, actor: Actor, refund_id: str) -> Refund:
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    payment = refund.payment
    # The attempt (subject: the payment, key: the refund's id) is recorded by the settlement. A refund
    # carries its own idempotency key, so repeating it is always safe: a lost answer is simply retried.
    exchange = gateway_call(
        subject=payment,
        operation="refund",
        idempotency_key=refund.pk,
        call=lambda gateway: gateway.refund(
            reference=payment.gateway_reference, amount=refund.amount, idempotency_key=refund.pk
        ),
    )
    try:
        return refund_settle(actor=actor, refund_id=refund_id, exchange=exchange)
    except Exception:
        exchange.record_alone()  # the call's trail, which rolled back with the settlement
        raise


@transaction.atomic(durable=True)
def refund_settle(*, actor: Actor, refund_id: str, exchange: GatewayExchange) -> Refund:
    """Applies the gateway's answer to a refund, recording the call's attempt in the same transaction."""
    payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
    payment = lock_payment(payment_id)
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    exchange.record()
    # A refund always answers; one that did not is retried like a lost answer.
    outcome: Outcome = exchange.outcome or GatewayResponseLost(code="gateway_no_answer")
    if refund.status != Refund.Status.PENDING:
        return refund
    if isinstance(outcome, GatewayError):
        refund.attempts += 1
        payload = {"refund": refund.pk, "payment": payment.pk}
        if dead_letter_if_exhausted(refund, outcome, kind="refund", operation="refund", payload=payload):
            _fail_refund(actor=actor, refund=refund, code="gateway_unavailable")
            return refund
        refund.save(update_fields=["attempts", "updated_at"])
        delay = retry_delay(refund.attempts)
        from apps.payments import tasks  # the tasks call these services

        transaction.on_commit(
            lambda: enqueue(tasks.retry_refund, refund_id, countdown=delay, fallback="reconciliation")
        )
        return refund
    if outcome.status == "failed":
        _fail_refund(actor=actor, refund=refund, code=outcome.failure_code or "refund_failed")
        return refund
    refund.gateway_reference = outcome.reference[:255]
    complete_refund(actor=actor, payment=payment, refund=refund)
    return refund


def _fail_refund(*, actor: Actor, refund: Refund, code: str) -> None:
    refund.status = Refund.Status.FAILED
    refund.failure_code = code[:64]
    refund.save(update_fields=["status", "failure_code", "attempts", "updated_at"])
    audit_record(
        actor=actor,
        action="refund.fail",
        entity_type="refund",
        entity_id=refund.pk,
        before={"status": Refund.Status.PENDING},
        after={"status": refund.status, "failure_code": refund.failure_code},
    )
