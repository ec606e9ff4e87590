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

    # 1 BEGIN; 2 the claim; 3 one call of wallet_transfer_batch_v1 for all 3 items; 4 the stored
    # response; 5 COMMIT
    with django_assert_num_queries(5):
        response = _post(auth_client, "/api/v1/transfers/batch", {"transfers": [item] * 3})

    assert response.status_code == 201, response.json()
    source.refresh_from_db()
    assert source.balance == 100_000 - 10 - 30


def test_a_card_payment_costs_a_pinned_number_of_queries(
    auth_client, broker_not_eager, django_assert_num_queries
):
    body = {"amount": 1500, "currency": "USD", "payment_method": "tok_visa"}
    _post(auth_client, "/api/v1/payments", body)  # caches the session's state, creates system accounts

    # the claim (3; the user comes from the session cache); opening the payment (BEGIN, the owner's row lock and velocity count
    # over payments and deposits, payment, event, audit chain, audit row, COMMIT); the simulated
    # gateway's own transaction (7); settling (BEGIN, lock, gateway attempt, raw-log event, 2
    # system accounts, journal entry, postings, payment, event, audit chain, audit row, COMMIT);
    # storing the response (4). No review lookup: a payment without risk reasons has none.
    with django_assert_num_queries(36):
        response = _post(auth_client, "/api/v1/payments", body)

    assert response.status_code == 201
    assert response.json()["status"] == Payment.Status.SUCCEEDED


def test_a_cached_payment_list_costs_no_query(auth_client, user, broker_not_eager, django_assert_num_queries):
    _post(auth_client, "/api/v1/payments", {"amount": 1500, "currency": "USD", "payment_method": "tok_visa"})
    first = auth_client.get("/api/v1/payments")

    # Re-pinned from 2 (issue 16): the user and whether it may see every payment come with the
    # session from the cache (accounts.session_cache); the page itself comes from the cache
    with django_assert_num_queries(0):
        response = auth_client.get("/api/v1/payments")

    assert response.json() == first.json()
    assert len(response.json()["data"]) == 1
