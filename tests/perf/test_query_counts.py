"""What the hot endpoints cost the database, pinned: a change that adds a query to one of them
fails here and has to say why (bench/README "Performance" has what each query costs under load).

The requests run as in production: committed transactions (the idempotency claim commits before
the view, every money service owns its transaction) and events handed to a broker rather than
consumed inline, so the counts are the web request's own, not those of the consumers that a
worker runs later. Each transaction's BEGIN and COMMIT are round trips too, and are counted.
"""

import uuid

import pytest

from apps.payments.models import Payment
from apps.wallets.services import wallet_create, wallet_deposit_settle, wallet_deposit_start
from config.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_not_eager():
    """Events go to Celery's in-memory broker (the test settings' default), as to RabbitMQ in
    production: the request publishes them and no consumer runs in it."""
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


def test_the_no_op_floor_costs_one_query(auth_client, django_assert_num_queries):
    auth_client.get("/api/v1/ping")  # caches the session's state

    # the user (which also catches a deactivated one at once); the session's state is cached
    with django_assert_num_queries(1):
        response = auth_client.get("/api/v1/ping")

    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_a_transfer_is_one_function_call_in_eleven_statements(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    source, destination = wallets
    body = {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 250}
    _post(auth_client, "/api/v1/transfers", {**body, "amount": 1})  # caches the session's state

    # the user; the idempotency claim (BEGIN, INSERT, COMMIT); the transfer (BEGIN, one call of
    # wallet_transfer_v2, which locks, checks and writes everything, COMMIT); storing the response
    # (BEGIN, SET LOCAL synchronous_commit, UPDATE, COMMIT)
    with django_assert_num_queries(11):
        response = _post(auth_client, "/api/v1/transfers", body)

    assert response.status_code == 201, response.json()
    source.refresh_from_db()
    assert source.balance == 100_000 - 1 - 250


def test_a_card_deposit_credits_the_wallet_in_a_pinned_number_of_queries(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    wallet, _ = wallets
    path = f"/api/v1/wallets/{wallet.pk}/deposits"
    body = {"amount": 1500, "payment_method": "tok_visa"}
    _post(auth_client, path, body)  # caches the session's state

    # the user; the claim (3); the wallet; opening the deposit (BEGIN, the wallet's row lock, the
    # owner and velocity count, transaction, audit chain, audit row, COMMIT); the simulated
    # gateway's own transaction (7); settling (BEGIN, the deposit's wallet, its lock, the
    # transaction's lock, gateway attempt, raw-log event, one call of wallet_deposit_credit_v1,
    # which writes the clearing account's entry, postings, balance, transaction, events and audit
    # row, COMMIT); reading the deposit again; storing the response (4). 41 before the function.
    with django_assert_num_queries(34):
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

    # the user; the claim (3); opening the payment (BEGIN, the owner's row lock and velocity count
    # over payments and deposits, payment, event, audit chain, audit row, COMMIT); the simulated
    # gateway's own transaction (7); settling (BEGIN, lock, gateway attempt, raw-log event, one
    # call of payment_card_capture_v1, which writes the system accounts' entry, postings, payment,
    # event and audit row, COMMIT); storing the response (4). No review lookup: a payment without
    # risk reasons has none. 37 before the function.
    with django_assert_num_queries(30):
        response = _post(auth_client, "/api/v1/payments", body)

    assert response.status_code == 201
    assert response.json()["status"] == Payment.Status.SUCCEEDED


def test_a_wallet_payment_costs_a_pinned_number_of_queries(
    auth_client, wallets, broker_not_eager, django_assert_num_queries
):
    wallet, _ = wallets
    body = {"amount": 1500, "currency": "USD", "payment_method": f"wallet:{wallet.pk}"}
    _post(auth_client, "/api/v1/payments", body)  # caches the session's state, creates system accounts

    # the user; the claim (3); paying (BEGIN, the wallet's lock, the owner and velocity count,
    # payment, payment.created event, one call of payment_wallet_capture_v1, which writes the
    # entry, postings, balance, both events, payment and audit row, COMMIT); storing the response
    # (4). 24 before the function.
    with django_assert_num_queries(16):
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

    # the user; the claim (3); paying (BEGIN, the wallet's lock, the owner and velocity count,
    # payment, payment.created event, one call of payment_wallet_hold_v1, which writes the entry,
    # postings, balance, wallet event, payment and audit row, COMMIT); storing the response (4).
    # 23 before the function.
    with django_assert_num_queries(16):
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

    # the user; the claim (3); capturing (BEGIN, the payment's lock, one call of
    # payment_wallet_hold_capture_v1, which locks the wallet and writes the entry, postings,
    # balance, both events, payment and audit row, COMMIT); storing the response (4). 22 before
    # the function.
    with django_assert_num_queries(12):
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

    # the user; the claim (3); canceling (BEGIN, the payment's lock, one call of
    # payment_wallet_hold_release_v1, which locks the wallet and writes the entry, postings,
    # balance, both events, payment and audit row, COMMIT); storing the response (4). 21 before
    # the function.
    with django_assert_num_queries(12):
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

    # the user; the claim (3); opening the refund (BEGIN, the payment's lock, refunds in flight,
    # refund, audit chain, audit row, COMMIT); reading it; the simulated gateway's own transaction
    # (9); settling (BEGIN, the refund's payment, its lock, the refund's lock, gateway attempt,
    # raw-log event, one call of payment_card_refund_v1, which writes the entry, postings, refund,
    # payment, event and audit row, COMMIT); reading the payment; storing the response (4).
    # 42 before the function.
    with django_assert_num_queries(34):
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

    # the user; the claim (3); refunding (BEGIN, the payment's lock, refunds in flight, refund,
    # one call of payment_wallet_refund_v1, which locks the wallet and writes the entry, postings,
    # balance, refund, payment, both events and the audit row, the refund's own audit row (chain,
    # row), COMMIT); storing the response (4). 26 before the function.
    with django_assert_num_queries(16):
        response = _post(auth_client, f"/api/v1/payments/{payment['id']}/refunds", {"amount": 400})

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "succeeded"
    wallet.refresh_from_db()
    assert wallet.balance == 100_000 - 1500 + 500


def test_a_cached_payment_list_costs_only_the_principal(
    auth_client, user, broker_not_eager, django_assert_num_queries
):
    _post(auth_client, "/api/v1/payments", {"amount": 1500, "currency": "USD", "payment_method": "tok_visa"})
    first = auth_client.get("/api/v1/payments")

    # the user and whether it may see every payment (one query: accounts.selectors.
    # user_has_permission); the page itself comes from the cache
    with django_assert_num_queries(2):
        response = auth_client.get("/api/v1/payments")

    assert response.json() == first.json()
    assert len(response.json()["data"]) == 1
