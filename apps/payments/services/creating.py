"""Creating a payment: the payment-method shapes, and opening a card or wallet payment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.outbox import emit_event, emit_events
from apps.gateways import get_gateway, payment_methods
from apps.gateways.payment_methods import payment_method_require_known
from apps.payments import cache as payment_cache
from apps.payments import risk
from apps.payments.errors import InvalidPaymentMethod
from apps.payments.models import PROCESSING_REQUESTED, Payment
from apps.payments.services.booking import capture_wallet_payment, hold_wallet_payment, open_review
from apps.payments.services.payloads import audit_view, payment_payload
from apps.payments.services.steps import run_pending_operation
from apps.wallets.errors import CurrencyMismatch, WalletNotFound
from apps.wallets.locks import lock_wallets

S = Payment.Status
Op = Payment.Operation
# What `parse_payment_method` accepts (a gateway token's shapes are the gateways' to say); the API
# documents the same shapes from these.
TOKEN_PATTERN = payment_methods.TOKEN_PATTERN
WALLET_PATTERN = re.compile(r"^wallet:(wal_[0-9A-Z]{26})$")


@dataclass(frozen=True)
class PaymentMethod:
    type: str  # Payment.MethodType
    token: str = ""
    wallet_id: str = ""


def parse_payment_method(value: str) -> PaymentMethod:
    """A gateway token (`tok_…`, `pm_…`, `anet_nonce:…`, `anet_profile:…`) or `wallet:<wallet id>`;
    anything else is a 400."""
    if not isinstance(value, str):
        raise InvalidPaymentMethod(param="payment_method")
    if match := WALLET_PATTERN.match(value):
        return PaymentMethod(type=Payment.MethodType.WALLET, wallet_id=match.group(1))
    if TOKEN_PATTERN.match(value):
        return PaymentMethod(type=Payment.MethodType.CARD, token=value)
    raise InvalidPaymentMethod(param="payment_method")


def payment_create(
    *,
    actor: Actor,
    owner: User,
    amount: int,
    currency: str,
    payment_method: str,
    capture_method: str = Payment.CaptureMethod.AUTOMATIC,
    description: str = "",
    customer_id: str = "",
    metadata: dict[str, Any] | None = None,
    receipt_email: str = "",
    subscription_id: str = "",
    billing_period: str = "",
    respond_async: bool = False,
) -> Payment:
    """Creates and runs a payment; declines are a `failed` payment, not an error.

    `respond_async` (`Prefer: respond-async`): a card payment is only opened, `pending`, and its
    gateway step is left to a worker: the opening transaction also writes the outbox event
    `payment.processing_requested`, whose consumer queues `run_payment_step` on the payments queue,
    which runs the very step a synchronous payment runs here (`run_pending_operation`). A broker
    that is down when the payment commits delays the step (the outbox hands the event over again),
    it never loses it. A wallet payment has no gateway step: it is made at once either way.

    A token the gateway does not know is refused first (400 `resource_missing`), with nothing
    written, as Stripe refuses it.

    A subscription payment names its `subscription_id` and `billing_period`; the database holds
    one payment per pair, so a second attempt at the same period (billing run twice, two workers
    racing) gets the first one back — and finishes its pending gateway step if it has one, which
    is safe because that step's idempotency key is the payment's own id.
    """
    method = parse_payment_method(payment_method)
    if method.type == Payment.MethodType.CARD and not subscription_id:
        # Before anything is written (a subscription's charges were checked when it was set up).
        payment_method_require_known(token=method.token)
    fields = {
        "owner": owner,
        "amount": amount,
        "currency": currency,
        "capture_method": capture_method,
        "description": description or "",
        "customer_id": customer_id or owner.pk,
        "metadata": metadata or {},
        "receipt_email": receipt_email or "",
        "subscription_id": subscription_id or "",
        "billing_period": billing_period if subscription_id else "",
    }
    try:
        if method.type == Payment.MethodType.WALLET:
            return _wallet_payment_create(actor=actor, wallet_id=method.wallet_id, fields=fields)
        payment = card_payment_open(actor=actor, token=method.token, fields=fields, run_async=respond_async)
    except IntegrityError as exc:
        existing = _existing_period_payment(exc, subscription_id, billing_period)
        if existing is None:
            raise
        payment = existing
    if respond_async:
        return payment  # as opened: its step is the worker's
    return run_pending_operation(actor=actor, payment_id=payment.pk, payment=payment)


def _existing_period_payment(
    exc: IntegrityError, subscription_id: str, billing_period: str
) -> Payment | None:
    if not subscription_id or "payment_one_per_billing_period" not in str(exc):
        return None
    return Payment.objects.filter(subscription_id=subscription_id, billing_period=billing_period).first()


@transaction.atomic(durable=True)
def card_payment_open(
    *, actor: Actor, token: str, fields: dict[str, Any], run_async: bool = False
) -> Payment:
    """Writes the `pending` card payment with its authorize step to do; `run_async`: with the event
    that has a worker do that step (`PROCESSING_REQUESTED`)."""
    reasons = risk.assess(owner=fields["owner"], amount=fields["amount"])
    payment = Payment.objects.create(
        **fields,
        method_type=Payment.MethodType.CARD,
        payment_method_token=token,
        gateway=get_gateway().name,
        status=S.PENDING,
        pending_operation=Op.AUTHORIZE,
        operation_amount=fields["amount"],
        risk_reasons=reasons,
    )
    payload = payment_payload(payment)
    events = [("payment.created", payment, payload)]
    if run_async:
        events.append((PROCESSING_REQUESTED, payment, payload))
    emit_events(events=events)
    audit_record(
        actor=actor,
        action="payment.create",
        entity_type="payment",
        entity_id=payment.pk,
        after=audit_view(payment),
    )
    payment_cache.bump_on_commit(owner_ids=[payment.owner_id])
    return payment


@transaction.atomic(durable=True)
def _wallet_payment_create(*, actor: Actor, wallet_id: str, fields: dict[str, Any]) -> Payment:
    """Pays from the owner's own wallet in one transaction: debit (or hold), entry, events."""
    owner = fields["owner"]
    wallet = lock_wallets([wallet_id]).get(wallet_id)
    if wallet is None or wallet.user_id != owner.pk:
        raise WalletNotFound(f"No such wallet: '{wallet_id}'", param="payment_method")
    if wallet.currency != fields["currency"]:
        raise CurrencyMismatch(
            f"This wallet holds {wallet.currency}, not {fields['currency']}.", param="currency"
        )
    reasons = risk.assess(owner=owner, amount=fields["amount"])
    payment = Payment.objects.create(
        **fields,
        method_type=Payment.MethodType.WALLET,
        wallet=wallet,
        gateway="wallet",
        status=S.PENDING,
        risk_reasons=reasons,
    )
    emit_event(event_type="payment.created", aggregate=payment, payload=payment_payload(payment))
    if reasons or payment.capture_method == Payment.CaptureMethod.MANUAL:
        hold_wallet_payment(actor=actor, payment=payment, wallet=wallet, review=bool(reasons))
        if reasons:
            open_review(actor=actor, payment=payment, reasons=reasons)
    else:
        capture_wallet_payment(actor=actor, payment=payment, wallet=wallet)
    payment_cache.bump_on_commit(owner_ids=[owner.pk])
    return payment
