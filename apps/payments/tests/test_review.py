"""PUT /payments/{id}/review: approve captures, deny voids, one decision only, note required."""

import pytest

from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.payments.models import Payment, Review
from apps.payments.tests.factories import sum_of_postings

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(auth_client):
    body = auth_client.post(
        "/api/v1/payments",
        {"amount": 7000, "currency": "USD", "payment_method": "tok_riskLevelElevated"},
        format="json",
    ).json()
    assert body["status"] == "in_review"
    return body["id"]


def decide(client, payment_id, decision, note="checked with the customer"):
    return client.put(
        f"/api/v1/payments/{payment_id}/review", {"decision": decision, "note": note}, format="json"
    )


def test_approve_captures_audits_and_tells(reviewer_client, staff_reviewer, held):
    response = decide(reviewer_client, held, "approve")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["amount_captured"] == 7000
    assert body["review"]["status"] == "approved"
    assert body["review"]["decided_by"] == staff_reviewer.pk
    assert body["review"]["note"] == "checked with the customer"
    assert body["review"]["decided_at"]
    assert sum_of_postings("platform_revenue", "USD") == 7000
    audit = AuditLog.objects.get(entity_id=held, action="review.approve")
    assert audit.actor_id == staff_reviewer.pk
    assert OutboxEvent.objects.filter(aggregate_id=held, event_type="payment.review_decided").count() == 1


def test_deny_voids_and_moves_no_money(reviewer_client, held):
    body = decide(reviewer_client, held, "deny").json()
    assert body["status"] == "canceled"
    assert body["review"]["status"] == "denied"
    assert sum_of_postings("platform_revenue", "USD") == 0


def test_a_second_decision_is_409_review_closed(reviewer_client, held):
    decide(reviewer_client, held, "approve")
    again = decide(reviewer_client, held, "deny")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "review_closed"
    assert Payment.objects.get(pk=held).status == "succeeded"


@pytest.mark.parametrize("note", ["", "   "])
def test_a_decision_without_a_note_is_400(reviewer_client, held, note):
    response = decide(reviewer_client, held, "approve", note=note)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "note"
    assert Review.objects.get(payment_id=held).status == "open"


def test_missing_note_field_is_400(reviewer_client, held):
    response = reviewer_client.put(f"/api/v1/payments/{held}/review", {"decision": "approve"}, format="json")
    assert response.status_code == 400


def test_without_the_review_permission_it_is_403(auth_client, held):
    response = decide(auth_client, held, "approve")
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"
    assert Review.objects.get(payment_id=held).status == "open"


def test_reviewers_see_every_payment(reviewer_client, held):
    assert reviewer_client.get(f"/api/v1/payments/{held}").status_code == 200
    assert [p["id"] for p in reviewer_client.get("/api/v1/payments?status=in_review").json()["data"]] == [
        held
    ]


def test_a_payment_not_in_review_is_409(reviewer_client, auth_client):
    plain = auth_client.post(
        "/api/v1/payments", {"amount": 100, "currency": "USD", "payment_method": "tok_visa"}, format="json"
    ).json()
    response = decide(reviewer_client, plain["id"], "approve")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "review_closed"


def test_wallet_payment_over_threshold_is_held_and_approval_takes_the_hold(
    auth_client, reviewer_client, funded_wallet, settings
):
    settings.REVIEW_AMOUNT_THRESHOLD = 3000
    wallet = funded_wallet(10_000)
    held = auth_client.post(
        "/api/v1/payments",
        {"amount": 5000, "currency": "USD", "payment_method": f"wallet:{wallet.pk}"},
        format="json",
    ).json()
    assert held["status"] == "in_review"
    wallet.refresh_from_db()
    assert wallet.balance == 5000
    assert decide(reviewer_client, held["id"], "approve").json()["status"] == "succeeded"
    assert sum_of_postings("wallet_holds", "USD") == 0
    assert sum_of_postings("platform_revenue", "USD") == 5000


def test_a_staff_users_api_key_cannot_decide_a_review(api_key_client_for, staff_reviewer, held):
    # An API key acts for its user's customer role only (API.md): reviewing needs a staff login.
    response = decide(api_key_client_for(staff_reviewer), held, "deny")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "review_permission_required"
    assert Review.objects.get(payment_id=held).status == "open"
    assert Payment.objects.get(pk=held).status == "in_review"
    assert not AuditLog.objects.filter(entity_id=held, action__startswith="review.").exists()


def test_a_staff_users_api_key_sees_only_their_own_payments(api_key_client_for, staff_reviewer, held):
    client = api_key_client_for(staff_reviewer)

    assert client.get(f"/api/v1/payments/{held}").status_code == 404
    assert client.get("/api/v1/payments").json()["data"] == []
    assert client.get("/api/v1/payments?status=in_review").json()["data"] == []


def test_a_reviewer_cannot_decide_their_own_payment(reviewer_client, staff_reviewer):
    from apps.payments.services import payment_create

    own = payment_create(
        actor=staff_reviewer,
        owner=staff_reviewer,
        amount=7000,
        currency="USD",
        payment_method="tok_riskLevelElevated",
    )
    assert own.status == "in_review"

    response = decide(reviewer_client, own.pk, "approve")

    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("permission_error", "review_own_payment")
    assert Payment.objects.get(pk=own.pk).status == "in_review"
    assert Review.objects.get(payment_id=own.pk).status == "open"
    assert not AuditLog.objects.filter(entity_id=own.pk, action__startswith="review.").exists()
    assert not OutboxEvent.objects.filter(aggregate_id=own.pk, event_type="payment.review_decided").exists()
