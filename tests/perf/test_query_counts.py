"""What the hot endpoints cost the database, pinned: a change that adds a query to one of them
fails here and has to say why (bench/README "Performance" has what each query costs under load).

The requests run as in production: committed transactions (a gateway call's idempotency claim
commits before the view; a transfer's claim, work and response commit together; every money
service owns its transaction) and events handed to a broker rather than
consumed inline, so the counts are the web request's own, not those of the consumers that a
worker runs later. Each transaction's BEGIN and COMMIT are round trips too, and are counted.
"""

import uuid

import pytest

from apps.core.models import IdempotencyRecord
from apps.payments.models import Payment
from apps.wallets.services import wallet_create, wallet_deposit_settle, wallet_deposit_start
from config.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_not_eager(settings):
    """As in production: the outbox relay, not the request, hands events to the broker (OUTBOX_RELAY),
    and tasks the request itself queues go to Celery's in-memory broker (the test settings'
    default) as to RabbitMQ; no consumer runs in the request."""
    settings.OUTBOX_RELAY = True
    saved = celery_app.conf.task_always_eager, celery_app.conf.broker_url
    celery_app.conf.update(task_always_eager=False, broker_url="memory://")
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    yield
    celery_app.conf.update(task_always_eager=saved[0], broker_url=saved[1])
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def wallets(user, other_user):
    """The user's wallet holding 1,000.00 USD, and another user's empty one."""
    from apps.gateways import GatewayResult

    source = wallet_create(actor=user, user=user, currency="USD")
    txn = wallet_deposit_start(actor=user, user=user, wallet_id=source.pk, amount=100_000)
    wallet_deposit_settle(actor=user, transaction_id=txn.pk, result=GatewayResult(status="captured"))
    return source, wallet_create(actor=other_user, user=other_user, currency="USD")


def _post(client, path, body):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)


def test_the_no_op_floor_costs_no_query(auth_client, django_assert_num_queries):
    auth_client.get("/api/v1/ping")  # caches the session's state and the user

    # Re-pinned from 1 (issue 16): the user is read from the session cache too, which forgets it
    # when the user changes (apps.accounts.session_cache), so a deactivated one is still refused.
    with django_assert_num_queries(0):
        response = auth_client.get("/api/v1/ping")

    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_who_am_i_costs_no_query(auth_client, user, django_assert_num_queries):
    auth_client.get("/api/v1/auth/me")  # caches the session's state and the user

    # (issue 16) was 2: the user, its roles; both now come with the session from the cache
    with django_assert_num_queries(0):
        response = auth_client.get("/api/v1/auth/me")

    assert response.status_code == 200
    assert response.json()["id"] == user.id
    assert response.json()["roles"] == ["customer"]


def test_a_transfer_is_one_transaction_of_claim_function_call_and_response_in_five_statements(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    source, destination = wallets
    body = {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 250}
    _post(auth_client, "/api/v1/transfers", {**body, "amount": 1})  # caches the session's state

    # ONE transaction (@idempotent(atomic=True)), and the user from the session cache: 1 BEGIN;
    # 2 the idempotency claim (INSERT ... ON CONFLICT DO NOTHING, a racer with the key waits on the
    # unique index here); 3 one call of wallet_transfer_v2, which locks, checks and writes
    # everything; 4 the response stored on the claimed row (UPDATE); 5 COMMIT. (Before: 18
    # statements in 3 transactions and a user SELECT.)
    with django_assert_num_queries(5) as captured:
        response = _post(auth_client, "/api/v1/transfers", body)

    assert response.status_code == 201, response.json()
    statements = [query["sql"] for query in captured.captured_queries]
    assert (statements[0], statements[-1]) == ("BEGIN", "COMMIT")
    assert statements[1].startswith('INSERT INTO "core_idempotencyrecord"')
    assert "FROM wallet_transfer_v2(" in statements[2]
    assert statements[3].startswith('UPDATE "core_idempotencyrecord"')
    source.refresh_from_db()
    assert source.balance == 100_000 - 1 - 250
    record = IdempotencyRecord.objects.get(key=response.wsgi_request.headers["Idempotency-Key"])
    assert (record.state, record.response_status, record.response_body) == ("completed", 201, response.json())


def test_a_batch_is_one_transaction_of_claim_function_call_and_response_in_five_statements(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    source, destination = wallets
    item = {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 10}
    _post(auth_client, "/api/v1/transfers/batch", {"transfers": [item]})  # caches the session's state

    # 1 BEGIN; 2 the claim; 3 one call of wallet_transfer_batch_v2 for all 3 items; 4 the stored
    # response; 5 COMMIT
    with django_assert_num_queries(5):
        response = _post(auth_client, "/api/v1/transfers/batch", {"transfers": [item] * 3})

    assert response.status_code == 201, response.json()
    source.refresh_from_db()
    assert source.balance == 100_000 - 10 - 30


def test_a_card_deposit_credits_the_wallet_in_a_pinned_number_of_queries(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    wallet, _ = wallets
    path = f"/api/v1/wallets/{wallet.pk}/deposits"
    body = {"amount": 1500, "payment_method": "tok_visa"}
    _post(auth_client, path, body)  # caches the session's state

    # the claim (3; the user comes from the session cache); the wallet; opening the deposit (BEGIN, the
    # wallet's row lock, the owner and velocity count, transaction, audit chain, audit row, COMMIT); the
    # simulated gateway's own transaction (7); settling (BEGIN, the deposit's wallet, its lock, the
    # transaction's lock, gateway attempt, raw-log event, one call of wallet_deposit_credit_v2, which writes
    # the clearing account's entry, postings, balance, transaction, events and audit row, COMMIT); reading the
    # deposit again; storing the response (4). 41 before the function.
    with django_assert_num_queries(33):
        response = _post(auth_client, path, body)

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "completed"
    wallet.refresh_from_db()
    assert wallet.balance == 100_000 + 2 * 1500


def test_a_card_payment_costs_a_pinned_number_of_queries(
    auth_client, broker_not_eager, django_assert_num_queries
):
    body = {"amount": 1500, "currency": "USD", "payment_method": "tok_visa"}
    _post(auth_client, "/api/v1/payments", body)  # caches the session's state, creates system accounts

    # the claim (3; the user comes from the session cache); opening the payment (BEGIN, the owner's
    # row lock and velocity count
    # over payments and deposits, payment, event, audit chain, audit row, COMMIT); the simulated
    # gateway's own transaction (7); settling (BEGIN, lock, gateway attempt, raw-log event, one
    # call of payment_card_capture_v2, which writes the system accounts' entry, postings, payment,
    # event and audit row, COMMIT); storing the response (4). No review lookup: a payment without
    # risk reasons has none. 37 before the function.
    with django_assert_num_queries(29):
        response = _post(auth_client, "/api/v1/payments", body)

    assert response.status_code == 201
    assert response.json()["status"] == Payment.Status.SUCCEEDED


def test_an_asynchronous_card_payment_is_accepted_in_a_pinned_number_of_queries(
    auth_client, broker_not_eager, django_assert_num_queries
):
    body = {"amount": 1500, "currency": "USD", "payment_method": "tok_visa"}
    _post(auth_client, "/api/v1/payments", body)  # caches the session's state, creates system accounts

    # (issue 19) `Prefer: respond-async`: the claim (3; the user comes from the session cache);
    # opening the payment (BEGIN, the owner's row lock and velocity count, payment, its two events in
    # one INSERT (payment.created, payment.processing_requested), audit chain, audit row, COMMIT);
    # storing the response (4). No gateway: the worker's step does that.
    with django_assert_num_queries(15) as captured:
        response = auth_client.post(
            "/api/v1/payments",
            body,
            format="json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            HTTP_PREFER="respond-async",
        )

    assert response.status_code == 202, response.json()
    assert response.json()["status"] == Payment.Status.PENDING
    assert not any("simulatedcharge" in query["sql"] for query in captured.captured_queries)


def test_a_wallet_payment_costs_a_pinned_number_of_queries(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    wallet, _ = wallets
    body = {"amount": 1500, "currency": "USD", "payment_method": f"wallet:{wallet.pk}"}
    _post(auth_client, "/api/v1/payments", body)  # caches the session's state, creates system accounts

    # the claim (3; the user comes from the session cache); paying (BEGIN, the wallet's lock, the owner and
    # velocity count, payment, payment.created event, one call of payment_wallet_capture_v2, which writes the
    # entry, postings, balance, both events, payment and audit row, COMMIT); storing the response (4). 24
    # before the function.
    with django_assert_num_queries(15):
        response = _post(auth_client, "/api/v1/payments", body)

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == Payment.Status.SUCCEEDED
    wallet.refresh_from_db()
    assert wallet.balance == 100_000 - 2 * 1500


def test_a_manual_wallet_payment_holds_its_funds_in_a_pinned_number_of_queries(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    wallet, _ = wallets
    body = {
        "amount": 1500,
        "currency": "USD",
        "payment_method": f"wallet:{wallet.pk}",
        "capture_method": "manual",
    }
    _post(auth_client, "/api/v1/payments", body)  # caches the session's state, creates system accounts

    # the claim (3; the user comes from the session cache); paying (BEGIN, the wallet's lock, the owner and
    # velocity count, payment, payment.created event, one call of payment_wallet_hold_v2, which writes the
    # entry, postings, balance, wallet event, payment and audit row, COMMIT); storing the response (4). 23
    # before the function.
    with django_assert_num_queries(15):
        response = _post(auth_client, "/api/v1/payments", body)

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == Payment.Status.REQUIRES_CAPTURE
    wallet.refresh_from_db()
    assert wallet.balance == 100_000 - 2 * 1500


def test_capturing_a_wallet_hold_costs_a_pinned_number_of_queries(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    wallet, _ = wallets
    body = {
        "amount": 1500,
        "currency": "USD",
        "payment_method": f"wallet:{wallet.pk}",
        "capture_method": "manual",
    }
    first = _post(auth_client, "/api/v1/payments", body).json()
    _post(auth_client, f"/api/v1/payments/{first['id']}/capture", {})  # caches, creates system accounts
    held = _post(auth_client, "/api/v1/payments", body).json()

    # the claim (3; the user comes from the session cache); capturing (BEGIN, the payment's lock, one call of
    # payment_wallet_hold_capture_v2, which locks the wallet and writes the entry, postings,
    # balance, both events, payment and audit row, COMMIT); storing the response (4). 22 before
    # the function.
    with django_assert_num_queries(11):
        response = _post(auth_client, f"/api/v1/payments/{held['id']}/capture", {"amount": 1000})

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == Payment.Status.SUCCEEDED
    wallet.refresh_from_db()
    assert wallet.balance == 100_000 - 1500 - 1000


def test_canceling_a_wallet_hold_costs_a_pinned_number_of_queries(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    wallet, _ = wallets
    body = {
        "amount": 1500,
        "currency": "USD",
        "payment_method": f"wallet:{wallet.pk}",
        "capture_method": "manual",
    }
    first = _post(auth_client, "/api/v1/payments", body).json()
    _post(auth_client, f"/api/v1/payments/{first['id']}/cancel", {})  # caches the session's state
    held = _post(auth_client, "/api/v1/payments", body).json()

    # the claim (3; the user comes from the session cache); canceling (BEGIN, the payment's lock, one call of
    # payment_wallet_hold_release_v2, which locks the wallet and writes the entry, postings,
    # balance, both events, payment and audit row, COMMIT); storing the response (4). 21 before
    # the function.
    with django_assert_num_queries(11):
        response = _post(auth_client, f"/api/v1/payments/{held['id']}/cancel", {"reason": "changed my mind"})

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == Payment.Status.CANCELED
    wallet.refresh_from_db()
    assert wallet.balance == 100_000


def test_a_card_refund_costs_a_pinned_number_of_queries(
    auth_client, broker_not_eager, django_assert_num_queries
):
    body = {"amount": 1500, "currency": "USD", "payment_method": "tok_visa"}
    payment = _post(auth_client, "/api/v1/payments", body).json()
    _post(auth_client, f"/api/v1/payments/{payment['id']}/refunds", {"amount": 100})  # system accounts

    # the claim (3; the user comes from the session cache); opening the refund (BEGIN, the payment's lock,
    # refunds in flight, refund, audit chain, audit row, COMMIT); reading it; the simulated gateway's own
    # transaction (9); settling (BEGIN, the refund's payment, its lock, the refund's lock, gateway attempt,
    # raw-log event, one call of payment_card_refund_v2, which writes the entry, postings, refund, payment,
    # event and audit row, COMMIT); reading the payment; storing the response (4). 42 before the function.
    with django_assert_num_queries(33):
        response = _post(auth_client, f"/api/v1/payments/{payment['id']}/refunds", {"amount": 400})

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "succeeded"
    assert Payment.objects.get(pk=payment["id"]).amount_refunded == 500


def test_a_wallet_refund_costs_a_pinned_number_of_queries(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    wallet, _ = wallets
    body = {"amount": 1500, "currency": "USD", "payment_method": f"wallet:{wallet.pk}"}
    payment = _post(auth_client, "/api/v1/payments", body).json()
    _post(auth_client, f"/api/v1/payments/{payment['id']}/refunds", {"amount": 100})  # caches the session

    # the claim (3; the user comes from the session cache); refunding (BEGIN, the payment's lock, refunds in
    # flight, refund, one call of payment_wallet_refund_v2, which locks the wallet and writes the entry,
    # postings, balance, refund, payment, both events and the audit row, the refund's own audit row (chain,
    # row), COMMIT); storing the response (4). 26 before the function.
    with django_assert_num_queries(15):
        response = _post(auth_client, f"/api/v1/payments/{payment['id']}/refunds", {"amount": 400})

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "succeeded"
    wallet.refresh_from_db()
    assert wallet.balance == 100_000 - 1500 + 500


def test_a_cached_payment_list_costs_no_query(auth_client, user, broker_not_eager, django_assert_num_queries):
    _post(auth_client, "/api/v1/payments", {"amount": 1500, "currency": "USD", "payment_method": "tok_visa"})
    first = auth_client.get("/api/v1/payments")

    # Re-pinned from 2 (issue 16): the user and whether it may see every payment come with the
    # session from the cache (accounts.session_cache); the page itself comes from the cache
    with django_assert_num_queries(0):
        response = auth_client.get("/api/v1/payments")

    assert response.json() == first.json()
    assert len(response.json()["data"]) == 1


def test_a_payout_is_created_in_a_pinned_number_of_queries(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    from apps.payouts.models import Payout

    wallet, _ = wallets
    path = f"/api/v1/wallets/{wallet.pk}/payouts"
    body = {"amount": 2_500, "destination": "btok_success"}
    _post(auth_client, path, body)  # caches the session's state, creates the system accounts

    # (issue 20) the claim, committed before the work (3: the destination may be checked at the
    # gateway, as Stripe's bank tokens are); the wallet, scoped to its owner; creating (BEGIN, one
    # call of payout_create_v1: the wallet's lock, the risk rules, the entry into payouts_in_transit,
    # the payout, its event and audit row; COMMIT); storing the response (4).
    with django_assert_num_queries(11) as captured:
        response = _post(auth_client, path, body)

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == Payout.Status.PENDING
    assert sum("payout_create_v1" in query["sql"] for query in captured.captured_queries) == 1
    wallet.refresh_from_db()
    assert wallet.balance == 100_000 - 2 * 2_500
