"""Every call and error code of API.md's payments table, through HTTP, on PostgreSQL."""

from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from django.db import connection

from apps.core.models import OutboxEvent
from apps.ledger.models import JournalEntry, Posting
from apps.payments.models import Payment, Refund
from apps.payments.tests.factories import sum_of_postings

pytestmark = pytest.mark.django_db


def create(client, **body):
    payload = {"amount": 2500, "currency": "usd", "payment_method": "tok_visa", **body}
    return client.post("/api/v1/payments", payload, format="json")


def error_of(response):
    assert "Traceback" not in response.content.decode()
    return response.json()["error"]


# --- creation and the simulated tokens ----------------------------------------------------------


def test_purchase_with_tok_visa_succeeds_and_books_revenue(auth_client, user):
    response = create(auth_client, description="order 42", metadata={"order": "42"})
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("pay_")
    assert body["status"] == "succeeded"
    assert body["amount"] == body["amount_captured"] == 2500
    assert body["amount_refunded"] == 0
    assert body["currency"] == "USD"
    assert body["capture_method"] == "automatic"
    assert body["payment_method_details"] == {"type": "card", "brand": "visa", "last4": "4242"}
    assert body["gateway_reference"]
    assert body["customer_id"] == user.pk
    assert body["metadata"] == {"order": "42"}
    assert body["review"] is None
    assert body["failure_code"] is None
    assert sum_of_postings("platform_revenue", "USD") == 2500
    assert sum_of_postings("gateway_clearing", "USD") == -2500
    assert OutboxEvent.objects.filter(aggregate_id=body["id"], event_type="payment.succeeded").count() == 1


def test_mastercard_succeeds_with_its_last4(auth_client):
    body = create(auth_client, payment_method="tok_mastercard").json()
    assert body["status"] == "succeeded"
    assert body["payment_method_details"]["last4"] == "4444"


@pytest.mark.parametrize(
    ("token", "code"),
    [("tok_chargeDeclined", "card_declined"), ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds")],
)
def test_decline_is_201_failed_with_its_code_and_moves_nothing(auth_client, token, code):
    response = create(auth_client, payment_method=token)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "failed"
    assert body["failure_code"] == code
    assert body["failure_message"]
    assert body["amount_captured"] == 0
    assert not Posting.objects.exists()


def test_elevated_risk_is_held_in_review_with_its_reason(auth_client):
    body = create(auth_client, payment_method="tok_riskLevelElevated").json()
    assert body["status"] == "in_review"
    assert body["review"]["status"] == "open"
    assert body["review"]["reasons"] == ["gateway_elevated_risk"]
    assert body["amount_captured"] == 0
    assert not Posting.objects.exists()


def test_amount_at_the_review_threshold_is_held(auth_client, settings):
    settings.REVIEW_AMOUNT_THRESHOLD = 5000
    assert create(auth_client, amount=4999).json()["status"] == "succeeded"
    held = create(auth_client, amount=5000).json()
    assert held["status"] == "in_review"
    assert held["review"]["reasons"] == ["amount_over_threshold"]


def test_velocity_holds_an_owners_burst_even_with_a_fresh_customer_id_per_payment(
    auth_client, settings, client_for
):
    from apps.accounts.tests.factories import UserFactory

    settings.RISK_VELOCITY_LIMIT = 3
    bodies = [create(auth_client, customer_id=f"cus_{n}").json() for n in range(5)]
    assert [b["status"] for b in bodies] == ["succeeded"] * 3 + ["in_review"] * 2
    assert bodies[3]["review"]["reasons"] == ["owner_velocity"]
    assert Payment.objects.filter(status="in_review", amount_captured=0).count() == 2
    # Another owner has a velocity of their own.
    assert create(client_for(UserFactory()), customer_id="cus_0").json()["status"] == "succeeded"


def test_velocity_counts_an_owners_deposits_and_payments_together(auth_client, user, settings):
    from apps.wallets.services import wallet_create, wallet_deposit

    settings.RISK_VELOCITY_LIMIT = 3
    wallet = wallet_create(actor=user, user=user, currency="USD")
    for _ in range(3):
        wallet_deposit(actor=user, user=user, wallet_id=wallet.pk, amount=100, payment_method="tok_visa")
    held = create(auth_client).json()
    assert held["status"] == "in_review"
    assert held["review"]["reasons"] == ["owner_velocity"]
    assert held["amount_captured"] == 0


def test_manual_capture_authorizes_only(auth_client):
    body = create(auth_client, capture_method="manual").json()
    assert body["status"] == "requires_capture"
    assert body["amount_captured"] == 0
    assert not Posting.objects.exists()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"payment_method": "4242424242424242"}, "payment_method"),
        ({"payment_method": "4242 4242 4242 4242"}, "payment_method"),
        ({"card": {"number": "4242424242424242", "cvc": "123"}}, "card.number"),
        ({"cvc": "123"}, "cvc"),
        ({"metadata": {"note": "card 4000 0566 5566 5556"}}, "metadata.note"),
    ],
)
def test_raw_card_data_is_refused_and_never_stored_or_echoed(auth_client, body, param):
    response = create(auth_client, **body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "raw_card_data_rejected"
    assert error["param"] == param
    content = response.content.decode()
    assert "4242424242424242" not in content
    assert "5556" not in content
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"amount": "10"}, "amount"),
        ({"amount": None}, "amount"),
        ({"currency": "usdd"}, "currency"),
        ({"payment_method": "visa"}, "payment_method"),
        ({"payment_method": "wallet:nope"}, "payment_method"),
        ({"capture_method": "later"}, "capture_method"),
    ],
)
def test_bad_input_is_400_naming_the_param(auth_client, body, param):
    response = create(auth_client, **body)
    assert response.status_code == 400
    assert error_of(response)["param"] == param
    assert not Payment.objects.exists()


def test_payment_method_token_is_encrypted_at_rest(auth_client):
    payment_id = create(auth_client, payment_method="tok_mastercard").json()["id"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT payment_method_token FROM payments_payment WHERE id = %s", [payment_id])
        (raw,) = cursor.fetchone()
    assert "tok_mastercard" not in raw
    assert raw.startswith("v2.")
    assert Payment.objects.get(pk=payment_id).payment_method_token == "tok_mastercard"


def test_receipt_email_is_encrypted_at_rest(auth_client):
    payment_id = create(auth_client, receipt_email="ada@example.com").json()["id"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT receipt_email FROM payments_payment WHERE id = %s", [payment_id])
        (raw,) = cursor.fetchone()
    assert "ada@example.com" not in raw


# --- wallet payments ----------------------------------------------------------------------------


def test_wallet_payment_debits_the_payers_wallet(auth_client, funded_wallet):
    wallet = funded_wallet(10_000)
    body = create(auth_client, amount=4000, payment_method=f"wallet:{wallet.pk}").json()
    assert body["status"] == "succeeded"
    assert body["payment_method_details"] == {"type": "wallet", "wallet": wallet.pk}
    wallet.refresh_from_db()
    assert wallet.balance == 6000
    assert sum_of_postings("platform_revenue", "USD") == 4000


def test_wallet_payment_without_funds_moves_nothing(auth_client, funded_wallet):
    wallet = funded_wallet(100)
    response = create(auth_client, amount=4000, payment_method=f"wallet:{wallet.pk}")
    assert response.status_code == 400
    assert error_of(response)["code"] == "insufficient_funds"
    wallet.refresh_from_db()
    assert wallet.balance == 100
    assert not Payment.objects.exists()


def test_another_users_wallet_is_404(client_for, other_user, funded_wallet, user):
    wallet = funded_wallet(10_000)  # belongs to `user`
    response = create(client_for(other_user), payment_method=f"wallet:{wallet.pk}")
    assert response.status_code == 404
    assert not Payment.objects.exists()


def test_manual_wallet_payment_holds_then_partial_capture_returns_the_rest(auth_client, funded_wallet):
    wallet = funded_wallet(10_000)
    payment = create(
        auth_client, amount=4000, payment_method=f"wallet:{wallet.pk}", capture_method="manual"
    ).json()
    assert payment["status"] == "requires_capture"
    wallet.refresh_from_db()
    assert wallet.balance == 6000  # held
    captured = auth_client.post(f"/api/v1/payments/{payment['id']}/capture", {"amount": 1500}, format="json")
    assert captured.json()["status"] == "succeeded"
    assert captured.json()["amount_captured"] == 1500
    wallet.refresh_from_db()
    assert wallet.balance == 8500
    assert sum_of_postings("wallet_holds", "USD") == 0
    assert sum_of_postings("platform_revenue", "USD") == 1500


def test_wallet_refund_credits_the_wallet(auth_client, funded_wallet):
    wallet = funded_wallet(10_000)
    payment = create(auth_client, amount=4000, payment_method=f"wallet:{wallet.pk}").json()
    refund = auth_client.post(f"/api/v1/payments/{payment['id']}/refunds", {"amount": 1000}, format="json")
    assert refund.status_code == 201
    assert refund.json()["status"] == "succeeded"
    wallet.refresh_from_db()
    assert wallet.balance == 7000


# --- capture, cancel ----------------------------------------------------------------------------


def test_capture_in_full_and_in_part(auth_client):
    full = create(auth_client, capture_method="manual").json()
    response = auth_client.post(f"/api/v1/payments/{full['id']}/capture", {}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert response.json()["amount_captured"] == 2500

    part = create(auth_client, capture_method="manual").json()
    response = auth_client.post(f"/api/v1/payments/{part['id']}/capture", {"amount": 1000}, format="json")
    assert response.json()["amount_captured"] == 1000
    assert sum_of_postings("platform_revenue", "USD") == 3500


def test_capture_above_the_authorized_amount_is_400(auth_client):
    payment = create(auth_client, capture_method="manual").json()
    response = auth_client.post(f"/api/v1/payments/{payment['id']}/capture", {"amount": 2501}, format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "capture_exceeds_authorized"
    assert Payment.objects.get(pk=payment["id"]).status == "requires_capture"


def test_capturing_twice_is_409_unexpected_state(auth_client):
    payment = create(auth_client, capture_method="manual").json()
    auth_client.post(f"/api/v1/payments/{payment['id']}/capture", {}, format="json")
    again = auth_client.post(f"/api/v1/payments/{payment['id']}/capture", {}, format="json")
    assert again.status_code == 409
    error = error_of(again)
    assert error["type"] == "conflict_error"
    assert error["code"] == "payment_unexpected_state"
    assert sum_of_postings("platform_revenue", "USD") == 2500


def test_cancel_voids_an_authorization(auth_client):
    payment = create(auth_client, capture_method="manual").json()
    response = auth_client.post(
        f"/api/v1/payments/{payment['id']}/cancel", {"reason": "out of stock"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert not Posting.objects.exists()


def test_cancel_of_a_succeeded_payment_is_409(auth_client):
    payment = create(auth_client).json()
    response = auth_client.post(f"/api/v1/payments/{payment['id']}/cancel", {}, format="json")
    assert response.status_code == 409
    assert error_of(response)["code"] == "payment_unexpected_state"


# --- refunds ------------------------------------------------------------------------------------


def test_several_partial_refunds_then_full(auth_client):
    payment = create(auth_client, amount=3000).json()
    url = f"/api/v1/payments/{payment['id']}/refunds"
    first = auth_client.post(url, {"amount": 1000, "reason": "damaged"}, format="json")
    assert first.status_code == 201
    assert first.json()["id"].startswith("re_")
    assert first.json()["payment"] == payment["id"]
    assert first.json()["amount"] == 1000
    assert first.json()["status"] == "succeeded"
    after_first = auth_client.get(f"/api/v1/payments/{payment['id']}").json()
    assert after_first["status"] == "succeeded"  # partial refunds keep it succeeded
    assert after_first["amount_refunded"] == 1000

    assert auth_client.post(url, {"amount": 1500}, format="json").status_code == 201
    rest = auth_client.post(url, {}, format="json")  # no amount: what is left
    assert rest.json()["amount"] == 500
    final = auth_client.get(f"/api/v1/payments/{payment['id']}").json()
    assert final["status"] == "refunded"
    assert final["amount_refunded"] == 3000
    assert sum_of_postings("platform_revenue", "USD") == 0
    assert Refund.objects.filter(payment_id=payment["id"], status="succeeded").count() == 3


def test_refund_above_what_was_captured_is_400_and_moves_nothing(auth_client):
    payment = create(auth_client, amount=3000).json()
    url = f"/api/v1/payments/{payment['id']}/refunds"
    auth_client.post(url, {"amount": 2000}, format="json")
    response = auth_client.post(url, {"amount": 1001}, format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "refund_exceeds_captured"
    assert Refund.objects.count() == 1
    assert sum_of_postings("platform_revenue", "USD") == 1000


def test_refund_of_an_uncaptured_payment_is_409(auth_client):
    payment = create(auth_client, capture_method="manual").json()
    response = auth_client.post(f"/api/v1/payments/{payment['id']}/refunds", {}, format="json")
    assert response.status_code == 409


# --- reads --------------------------------------------------------------------------------------


def test_another_users_payment_is_404_everywhere(auth_client, client_for, other_user):
    payment = create(auth_client, capture_method="manual").json()
    stranger = client_for(other_user)
    assert stranger.get(f"/api/v1/payments/{payment['id']}").status_code == 404
    for action in ("capture", "cancel", "refunds"):
        response = stranger.post(f"/api/v1/payments/{payment['id']}/{action}", {}, format="json")
        assert response.status_code == 404, action
        assert payment["id"] not in response.content.decode() or action
    assert stranger.get("/api/v1/payments").json()["data"] == []
    assert Payment.objects.get(pk=payment["id"]).status == "requires_capture"


def test_list_newest_first_with_filters_and_cursor(auth_client):
    created = [create(auth_client, amount=100 + i).json()["id"] for i in range(5)]
    declined = create(auth_client, payment_method="tok_chargeDeclined").json()["id"]
    page = auth_client.get("/api/v1/payments?limit=3").json()
    assert [p["id"] for p in page["data"]] == [declined, *created[::-1][:2]]
    rest = auth_client.get(f"/api/v1/payments?limit=3&cursor={page['next_cursor']}").json()
    assert [p["id"] for p in rest["data"]] == created[::-1][2:]
    assert rest["next_cursor"] is None
    failed = auth_client.get("/api/v1/payments?status=failed").json()["data"]
    assert [p["id"] for p in failed] == [declined]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("status=nope", "status"),
        ("created_gte=yesterday", "created_gte"),
        ("created_gte=2026-13-01T00:00:00Z", "created_gte"),
        ("created_lt=0001-01-01T00:00:00%2B05:00", "created_lt"),  # before year 1 in UTC
        ("limit=0", "limit"),
        ("cursor=%%%", "cursor"),
    ],
)
def test_bad_list_filters_are_400(auth_client, query, param):
    response = auth_client.get(f"/api/v1/payments?{query}")
    assert response.status_code == 400
    assert error_of(response)["param"] == param


def test_a_time_filter_with_an_offset_postgresql_does_not_take_is_the_same_instant_in_utc(auth_client):
    payment = create(auth_client).json()
    created = datetime.fromisoformat(payment["created_at"].replace("Z", "+00:00"))
    # ISO 8601 allows offsets to ±23:59, PostgreSQL to ±15:59: one hour before, written at +22:30
    before = (created - timedelta(hours=1)).astimezone(timezone(timedelta(hours=22, minutes=30)))
    after = (created + timedelta(hours=1)).astimezone(timezone(-timedelta(hours=23)))
    query = urlencode({"created_gte": before.isoformat(), "created_lt": after.isoformat()})
    response = auth_client.get(f"/api/v1/payments?{query}")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["data"]] == [payment["id"]]


@pytest.mark.django_db(transaction=True)  # invalidation runs after a real commit
def test_cached_list_never_survives_a_change(auth_client):
    first = create(auth_client, capture_method="manual").json()
    assert auth_client.get("/api/v1/payments").json()["data"][0]["status"] == "requires_capture"
    auth_client.post(f"/api/v1/payments/{first['id']}/capture", {}, format="json")
    assert auth_client.get("/api/v1/payments").json()["data"][0]["status"] == "succeeded"
    second = create(auth_client).json()
    assert auth_client.get("/api/v1/payments").json()["data"][0]["id"] == second["id"]


def test_every_change_is_audited_with_one_entry_per_capture(auth_client):
    from apps.audit.models import AuditLog

    payment = create(auth_client).json()
    actions = list(
        AuditLog.objects.filter(entity_type="payment", entity_id=payment["id"]).values_list(
            "action", flat=True
        )
    )
    assert actions == ["payment.create", "payment.capture"]
    assert JournalEntry.objects.filter(memo=f"payment {payment['id']}").count() == 1
