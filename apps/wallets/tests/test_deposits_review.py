"""Deposits the risk rules hold: `in_review`, nothing credited, decided in the review queue.

A deposit at or above DEPOSIT_REVIEW_AMOUNT_THRESHOLD, or over the owner's velocity, is only
authorized at the gateway; a reviewer's approval (PUT /transactions/{id}/review, or the admin)
captures and credits it, a denial voids the authorization and fails it.
"""

from io import StringIO

import pytest
from django.core.management import call_command

from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.core.outbox import deliver_event
from apps.gateways import GatewayResponseLost, GatewayRetryableError
from apps.gateways.models import GatewayAttempt, SimulatedCharge
from apps.gateways.simulated import SimulatedGateway
from apps.ledger.models import JournalEntry
from apps.notifications.models import Notification
from apps.payments.models import Review
from apps.wallets import tasks
from apps.wallets.models import Transaction, Wallet
from apps.wallets.services import reconcile_deposits

pytestmark = pytest.mark.django_db

BIG = 50_000_000


@pytest.fixture
def wallet(user):
    from apps.wallets.services import wallet_create

    return wallet_create(actor=user, user=user, currency="USD")


@pytest.fixture
def customer(client_for, user):
    return client_for(user)


def deposit(client, wallet, amount, payment_method="tok_visa"):
    return client.post(
        f"/api/v1/wallets/{wallet.pk}/deposits",
        {"amount": amount, "payment_method": payment_method},
        format="json",
    )


def decide(client, txn_id, decision, note="called the card holder"):
    return client.put(
        f"/api/v1/transactions/{txn_id}/review", {"decision": decision, "note": note}, format="json"
    )


def balance(wallet):
    return Wallet.objects.get(pk=wallet.pk).balance


def verify_ledger() -> str:
    out = StringIO()
    call_command("verify_ledger", stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def held(customer, wallet):
    response = deposit(customer, wallet, BIG)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "in_review"
    return body["id"]


def test_a_deposit_at_the_threshold_is_held_in_review_and_credits_nothing(customer, wallet, settings):
    assert settings.DEPOSIT_REVIEW_AMOUNT_THRESHOLD == 1_000_000
    response = deposit(customer, wallet, BIG)

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "in_review"
    assert body["amount"] == BIG
    assert balance(wallet) == 0
    assert not JournalEntry.objects.exists()
    review = Review.objects.get(deposit_id=body["id"])
    assert (review.status, review.reasons, review.payment_id) == ("open", ["amount_over_threshold"], None)
    # The card was only authorized: nothing captured.
    charge = SimulatedCharge.objects.get(idempotency_key=body["id"])
    assert (charge.status, charge.amount_captured) == ("authorized", 0)
    assert AuditLog.objects.filter(entity_id=body["id"], action="wallet.deposit.hold").count() == 1
    assert not OutboxEvent.objects.filter(
        aggregate_id=body["id"], event_type="transaction.completed"
    ).exists()
    # Just under the threshold is an ordinary deposit.
    assert deposit(customer, wallet, 999_999).json()["status"] == "completed"
    assert balance(wallet) == 999_999


def test_a_held_deposit_cannot_be_transferred_out(customer, wallet, held, other_user):
    from apps.wallets.services import wallet_create

    target = wallet_create(actor=other_user, user=other_user, currency="USD")
    response = customer.post(
        "/api/v1/transfers",
        {"source_wallet": wallet.pk, "destination_wallet": target.pk, "amount": 1_000},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "insufficient_funds"
    assert balance(wallet) == balance(target) == 0
    assert not Transaction.objects.filter(type="transfer").exists()


def test_approving_a_held_deposit_captures_and_credits_it_once(
    reviewer_client, staff_reviewer, user, customer, wallet, held
):
    response = decide(reviewer_client, held, "approve")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["id"], body["status"]) == (held, "completed")
    assert balance(wallet) == BIG
    txn = Transaction.objects.get(pk=held)
    assert txn.journal_entry_id is not None
    review = Review.objects.get(deposit_id=held)
    assert (review.status, review.decided_by_id, review.note) == (
        "approved",
        staff_reviewer.pk,
        "called the card holder",
    )
    charge = SimulatedCharge.objects.get(idempotency_key=held)
    assert (charge.status, charge.amount_captured) == ("captured", BIG)
    audit = AuditLog.objects.get(entity_id=held, action="review.approve")
    assert audit.actor_id == staff_reviewer.pk
    assert AuditLog.objects.filter(entity_id=held, action="wallet.deposit.complete").count() == 1
    # The events (and so the customer's notification) of a normal completed deposit.
    events = set(OutboxEvent.objects.values_list("event_type", flat=True))
    assert {"transaction.review_decided", "transaction.completed", "wallet.funds_added"} <= events
    completed = OutboxEvent.objects.get(aggregate_id=held, event_type="transaction.completed")
    deliver_event(event_id=completed.pk)
    assert (
        Notification.objects.filter(user=user, template=Notification.Template.DEPOSIT_COMPLETED).count() == 1
    )
    assert "ledger OK" in verify_ledger()
    # The customer sees it completed; a second decision changes nothing.
    listed = customer.get(f"/api/v1/wallets/{wallet.pk}/transactions").json()["data"]
    assert [(t["id"], t["status"]) for t in listed] == [(held, "completed")]
    again = decide(reviewer_client, held, "deny")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "review_closed"
    assert balance(wallet) == BIG
    assert JournalEntry.objects.count() == 1


def test_denying_a_held_deposit_voids_the_authorization_and_credits_nothing(reviewer_client, wallet, held):
    response = decide(reviewer_client, held, "deny")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["failure_code"]) == ("failed", "review_denied")
    assert balance(wallet) == 0
    assert not JournalEntry.objects.exists()
    assert SimulatedCharge.objects.get(idempotency_key=held).status == "voided"
    void = GatewayAttempt.objects.get(subject_id=held, operation="void")
    assert void.outcome == "voided"
    assert Review.objects.get(deposit_id=held).status == "denied"
    assert AuditLog.objects.filter(entity_id=held, action="review.deny").count() == 1
    assert OutboxEvent.objects.filter(aggregate_id=held, event_type="transaction.failed").count() == 1
    assert "ledger OK" in verify_ledger()


def test_twenty_five_rapid_deposits_hold_the_ones_over_the_velocity_limit(customer, wallet, settings):
    settings.RISK_VELOCITY_LIMIT = 20
    statuses = [deposit(customer, wallet, 1_000).json()["status"] for _ in range(25)]

    assert statuses == ["completed"] * 20 + ["in_review"] * 5
    assert balance(wallet) == 20 * 1_000
    held = Review.objects.filter(deposit__isnull=False, status="open")
    assert held.count() == 5
    assert all(review.reasons == ["owner_velocity"] for review in held)


def test_velocity_counts_an_owners_payments_before_their_deposits(customer, wallet, settings):
    settings.RISK_VELOCITY_LIMIT = 2
    for n in range(2):
        payment = customer.post(
            "/api/v1/payments",
            {"amount": 500, "currency": "USD", "payment_method": "tok_visa", "customer_id": f"c{n}"},
            format="json",
        )
        assert payment.json()["status"] == "succeeded"
    assert deposit(customer, wallet, 1_000).json()["status"] == "in_review"
    assert balance(wallet) == 0


def test_a_reviewer_cannot_decide_their_own_deposit(client_for, staff_reviewer):
    from apps.wallets.services import wallet_create

    own = wallet_create(actor=staff_reviewer, user=staff_reviewer, currency="USD")
    client = client_for(staff_reviewer)
    txn_id = deposit(client, own, BIG).json()["id"]

    response = decide(client, txn_id, "approve")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "review_own_payment"
    assert balance(own) == 0
    assert Transaction.objects.get(pk=txn_id).status == "in_review"
    assert Review.objects.get(deposit_id=txn_id).status == "open"
    assert not AuditLog.objects.filter(entity_id=txn_id, action__startswith="review.").exists()


def test_a_customer_cannot_decide_a_deposit_review(customer, wallet, held):
    response = decide(customer, held, "approve")

    assert response.status_code == 403
    assert balance(wallet) == 0
    assert Review.objects.get(deposit_id=held).status == "open"


def test_deciding_a_deposit_needs_a_note_and_an_existing_held_deposit(
    reviewer_client, customer, wallet, held
):
    assert decide(reviewer_client, held, "approve", note="  ").status_code == 400
    assert Review.objects.get(deposit_id=held).status == "open"
    assert decide(reviewer_client, "txn_doesnotexist", "approve").status_code == 404
    ordinary = deposit(customer, wallet, 1_000).json()["id"]
    closed = decide(reviewer_client, ordinary, "approve")
    assert closed.status_code == 409
    assert closed.json()["error"]["code"] == "review_closed"
    assert balance(wallet) == 1_000


@pytest.mark.django_db(transaction=True)
def test_an_approved_deposit_whose_capture_fails_retryably_is_captured_by_the_worker_once(
    reviewer_client, wallet, held, monkeypatch, broker_down
):
    real = SimulatedGateway.capture
    keys = []

    def capture(self, *, reference, amount, idempotency_key):
        keys.append(idempotency_key)
        if len(keys) == 1:
            raise GatewayRetryableError("the gateway timed out", code="gateway_timeout")
        return real(self, reference=reference, amount=amount, idempotency_key=idempotency_key)

    monkeypatch.setattr(SimulatedGateway, "capture", capture)

    body = decide(reviewer_client, held, "approve").json()

    assert body["status"] == "pending"  # decided; the capture is the worker's to finish
    assert Review.objects.get(deposit_id=held).status == "approved"
    assert balance(wallet) == 0
    assert tasks.retry_deposit(held) == "completed"
    assert tasks.retry_deposit(held) == "completed"  # a late retry changes nothing
    assert balance(wallet) == BIG
    assert JournalEntry.objects.filter(kind="deposit").count() == 1
    assert keys == [f"{held}:capture", f"{held}:capture"]


@pytest.mark.django_db(transaction=True)
def test_a_denial_whose_void_answer_was_lost_is_settled_once_by_reconciliation(
    reviewer_client, wallet, held, monkeypatch
):
    real = SimulatedGateway.void
    calls = []

    def void(self, *, reference, idempotency_key):
        calls.append(idempotency_key)
        result = real(self, reference=reference, idempotency_key=idempotency_key)
        if len(calls) == 1:
            raise GatewayResponseLost("the answer never arrived")
        return result

    monkeypatch.setattr(SimulatedGateway, "void", void)

    assert decide(reviewer_client, held, "deny").json()["status"] == "pending"
    first = reconcile_deposits()
    again = reconcile_deposits()

    assert first.changes == [(held, "pending", "failed")]
    assert again.changes == []
    txn = Transaction.objects.get(pk=held)
    assert (txn.status, txn.failure_code) == ("failed", "review_denied")
    assert SimulatedCharge.objects.get(idempotency_key=held).status == "voided"
    assert balance(wallet) == 0
    assert not JournalEntry.objects.exists()


def test_a_held_deposit_whose_authorization_answer_was_lost_is_reconciled_into_review(customer, wallet):
    body = deposit(customer, wallet, BIG, payment_method="tok_responseLost").json()

    assert body["status"] == "in_review"  # reconciled: authorized only, held, not voided or credited
    assert SimulatedCharge.objects.get(idempotency_key=body["id"]).status == "authorized"
    assert Review.objects.get(deposit_id=body["id"]).status == "open"
    assert balance(wallet) == 0
