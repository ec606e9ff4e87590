"""What the card capture function (payment_card_capture_v2) writes is what the rest of Paydesk reads back.

The function writes the capture's entry and postings, the succeeded payment, its event and its
audit row in SQL; these tests hold it to the Python definitions those rows are read with: the
API serializer, the event payload (`payment_payload`), the audit chain's hash and the ledger's own
check, for each path that captures card money (the gateway step, a manual partial capture, a
provider's late success, which carries where the news came from).
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
from apps.payments.models import Payment
from apps.payments.provider_events import (
    ProviderChange,
    payment_apply_provider_change,
    payment_lock_for_change,
)
from apps.payments.serializers import PaymentOutputSerializer
from apps.payments.services import payment_capture, payment_create, payment_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def request_meta():
    correlation = set_correlation_id("corr-capture-fn")
    meta = set_request_meta(ip="203.0.113.9", user_agent='curl/8 "quoted" \U0001f4b8 zoë')
    yield
    reset_request_meta(meta)
    reset_correlation_id(correlation)


def _card_payment(user, *, amount=1_500, capture_method="automatic"):
    return payment_create(
        actor=user,
        owner=user,
        amount=amount,
        currency="USD",
        payment_method="tok_visa",
        capture_method=capture_method,
        customer_id="cus_42",
    )


def _capture_entry(payment_id: str) -> JournalEntry:
    return JournalEntry.objects.get(kind="payment_capture", memo=f"payment {payment_id}")


def _assert_books_verify():
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()


def test_the_returned_payment_is_the_row_the_function_wrote(user, request_meta):
    payment = _card_payment(user)

    stored = Payment.objects.get(pk=payment.pk)
    assert PaymentOutputSerializer(payment).data == PaymentOutputSerializer(stored).data
    assert (stored.status, stored.amount_captured, stored.pending_operation) == ("succeeded", 1_500, "")
    assert stored.next_attempt_at is None
    assert all((stored.gateway_reference, stored.card_brand, stored.card_last4))
    assert stored.payment_method_token == "tok_visa"  # the token the function did not touch still reads


def test_its_entry_moves_the_capture_from_gateway_clearing_to_revenue(user, request_meta):
    payment = _card_payment(user)

    entry = _capture_entry(payment.pk)
    assert entry.correlation_id == "corr-capture-fn"
    accounts = {
        code: LedgerAccount.objects.get(kind="system", code=code, currency="USD").pk
        for code in (SystemAccount.GATEWAY_CLEARING, SystemAccount.PLATFORM_REVENUE)
    }
    assert sorted(
        Posting.objects.filter(entry=entry).values_list("account_id", "amount", "currency")
    ) == sorted([(accounts["gateway_clearing"], -1_500, "USD"), (accounts["platform_revenue"], 1_500, "USD")])


def test_its_event_carries_the_payload_the_consumers_read(user, request_meta):
    payment = _card_payment(user)

    event = OutboxEvent.objects.get(event_type="payment.succeeded", aggregate_id=payment.pk)
    assert event.payload == payment_payload(Payment.objects.get(pk=payment.pk))
    assert (event.aggregate_type, event.correlation_id) == ("payment", "corr-capture-fn")
    # written waiting for the relay (or the on-commit hand-off), as every event is
    assert event.published_at is None
    assert event.publish_attempts == 0


def test_its_audit_row_hashes_as_the_chain_is_verified(user, request_meta):
    payment = _card_payment(user)

    row = AuditLog.objects.get(action="payment.capture", entity_id=payment.pk, after__status="succeeded")
    assert (row.actor_type, row.actor_id, row.correlation_id) == ("user", user.pk, "corr-capture-fn")
    assert (str(row.ip), row.user_agent) == ("203.0.113.9", 'curl/8 "quoted" \U0001f4b8 zoë')
    view = {
        "amount": 1_500,
        "amount_captured": 1_500,
        "amount_refunded": 0,
        "currency": "USD",
        "failure_code": "",
    }
    # authorized and captured in one gateway call
    assert row.before == {**view, "status": "pending", "pending_operation": "authorize"}
    assert row.after == {**view, "status": "succeeded", "pending_operation": ""}
    assert row.hash == chain_hash(row)
    _assert_books_verify()


def test_a_manual_partial_capture_books_only_the_captured_amount(user, request_meta):
    authorized = _card_payment(user, capture_method="manual")
    assert authorized.status == "requires_capture"

    payment = payment_capture(actor=user, owner=user, payment_id=authorized.pk, amount=600)

    stored = Payment.objects.get(pk=payment.pk)
    assert PaymentOutputSerializer(payment).data == PaymentOutputSerializer(stored).data
    assert (stored.status, stored.amount_captured) == ("succeeded", 600)
    assert sorted(
        Posting.objects.filter(entry=_capture_entry(payment.pk)).values_list("amount", flat=True)
    ) == [
        -600,
        600,
    ]
    _assert_books_verify()


def test_a_providers_late_success_carries_its_source_and_scrubs_it_in_the_audit_row(user, request_meta):
    authorized = _card_payment(user, capture_method="manual")
    source = {"webhook_event": "whk_1", "provider_event": "evt 4242 4242 4242 4242"}
    change = ProviderChange(kind="succeeded", references=(authorized.gateway_reference,), amount=900)

    with transaction.atomic():
        locked = payment_lock_for_change(change=change)
        outcome = payment_apply_provider_change(actor=None, payment=locked, change=change, source=source)

    assert outcome.applied
    stored = Payment.objects.get(pk=authorized.pk)
    assert (stored.status, stored.amount_captured) == ("succeeded", 900)
    extra = {"source": "provider", **source}
    event = OutboxEvent.objects.get(event_type="payment.succeeded", aggregate_id=stored.pk)
    assert event.payload == {**payment_payload(stored), **extra}
    row = AuditLog.objects.get(action="payment.capture", entity_id=stored.pk)
    assert row.after["provider_event"] == "evt •••• 4242"
    assert (row.after["source"], row.after["webhook_event"], row.actor_repr) == (
        "provider",
        "whk_1",
        "system",
    )
    assert row.before["status"] == "requires_capture"
    assert row.hash == chain_hash(row)
    _assert_books_verify()
