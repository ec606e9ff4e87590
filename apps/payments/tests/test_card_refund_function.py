"""What the card refund function (payment_card_refund_v2) writes is what the rest of Paydesk reads back.

The function writes the refund's entry and postings, the succeeded refund, the payment's refunded
amount and status, its event and its audit row in SQL; these tests hold it to the Python
definitions those rows are read with: the API serializers, the event payload (`payment_payload`),
the audit chain's hash and the ledger's own check, for a partial refund, the one that gives the
rest back, and a refund made at the provider.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from apps.audit.chain import chain_hash
from apps.audit.models import AuditLog
from apps.core.correlation import (
    reset_correlation_id,
    reset_request_meta,
    set_correlation_id,
    set_request_meta,
)
from apps.core.models import OutboxEvent
from apps.ledger.models import JournalEntry, LedgerAccount, Posting, SystemAccount
from apps.payments.models import Payment, Refund
from apps.payments.provider_events import (
    ProviderChange,
    payment_apply_provider_change,
    payment_lock_for_change,
)
from apps.payments.serializers import PaymentOutputSerializer, RefundOutputSerializer
from apps.payments.services import payment_create, payment_payload, payment_refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def request_meta():
    correlation = set_correlation_id("corr-refund-fn")
    meta = set_request_meta(ip="203.0.113.9", user_agent='curl/8 "quoted" \U0001f4b8 zoë')
    yield
    reset_request_meta(meta)
    reset_correlation_id(correlation)


@pytest.fixture
def captured(user):
    return payment_create(
        actor=user, owner=user, amount=1_500, currency="USD", payment_method="tok_visa", customer_id="cus_42"
    )


def _assert_books_verify():
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()


def test_the_returned_refund_is_the_row_the_function_wrote(user, captured, request_meta):
    refund = payment_refund(actor=user, owner=user, payment_id=captured.pk, amount=400)

    stored = Refund.objects.get(pk=refund.pk)
    assert RefundOutputSerializer(refund).data == RefundOutputSerializer(stored).data
    assert (stored.status, stored.updated_at) == ("succeeded", refund.updated_at)
    assert stored.gateway_reference
    payment = Payment.objects.get(pk=captured.pk)
    assert (payment.status, payment.amount_refunded, payment.pending_operation) == ("succeeded", 400, "")


def test_its_entry_gives_the_amount_back_from_revenue_to_gateway_clearing(user, captured, request_meta):
    refund = payment_refund(actor=user, owner=user, payment_id=captured.pk, amount=400)

    entry = JournalEntry.objects.get(kind="refund", memo=f"refund {refund.pk}")
    assert entry.correlation_id == "corr-refund-fn"
    accounts = {
        code: LedgerAccount.objects.get(kind="system", code=code, currency="USD").pk
        for code in (SystemAccount.GATEWAY_CLEARING, SystemAccount.PLATFORM_REVENUE)
    }
    assert sorted(
        Posting.objects.filter(entry=entry).values_list("account_id", "amount", "currency")
    ) == sorted([(accounts["platform_revenue"], -400, "USD"), (accounts["gateway_clearing"], 400, "USD")])


def test_the_refund_of_the_rest_refunds_the_payment_and_its_event_and_audit_row_say_so(
    user, captured, request_meta
):
    payment_refund(actor=user, owner=user, payment_id=captured.pk, amount=400)
    last = payment_refund(actor=user, owner=user, payment_id=captured.pk)

    payment = Payment.objects.get(pk=captured.pk)
    assert (payment.status, payment.amount_refunded, last.amount) == ("refunded", 1_500, 1_100)
    event = OutboxEvent.objects.get(event_type="payment.refunded", payload__refund=last.pk)
    assert event.payload == {**payment_payload(payment), "refund": last.pk, "refund_amount": 1_100}
    assert (event.aggregate_type, event.aggregate_id, event.correlation_id) == (
        "payment",
        payment.pk,
        "corr-refund-fn",
    )
    assert event.published_at is None  # written waiting for the relay, as every event is
    row = AuditLog.objects.get(action="payment.refund", entity_id=payment.pk, after__refund=last.pk)
    view = {
        "amount": 1_500,
        "amount_captured": 1_500,
        "amount_refunded": 1_500,
        "currency": "USD",
        "failure_code": "",
    }
    assert row.before == {**view, "status": "succeeded", "pending_operation": ""}
    assert row.after == {
        **view,
        "status": "refunded",
        "pending_operation": "",
        "refund": last.pk,
        "refund_amount": 1_100,
    }
    assert (str(row.ip), row.user_agent, row.actor_id) == (
        "203.0.113.9",
        'curl/8 "quoted" \U0001f4b8 zoë',
        user.pk,
    )
    assert row.hash == chain_hash(row)
    assert PaymentOutputSerializer(payment).data["status"] == "refunded"
    _assert_books_verify()


def test_a_refund_made_at_the_provider_is_booked_by_the_function(captured, request_meta):
    change = ProviderChange(
        kind="refunded", references=(captured.gateway_reference,), amount=300, refund_reference="re_prov_1"
    )

    with transaction.atomic():
        locked = payment_lock_for_change(change=change)
        outcome = payment_apply_provider_change(
            actor=None, payment=locked, change=change, source={"webhook_event": "whk_2"}
        )

    assert outcome.applied
    refund = Refund.objects.get(gateway_reference="re_prov_1")
    assert (refund.status, refund.amount) == ("succeeded", 300)
    payment = Payment.objects.get(pk=captured.pk)
    assert (payment.status, payment.amount_refunded) == ("succeeded", 300)
    assert JournalEntry.objects.filter(kind="refund", memo=f"refund {refund.pk}").exists()
    row = AuditLog.objects.get(action="payment.refund", entity_id=payment.pk)
    assert row.hash == chain_hash(row)
    _assert_books_verify()
