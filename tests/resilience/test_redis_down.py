"""Redis stops: money still moves correctly, idempotency still holds (PostgreSQL answers), and
health says `degraded` (503, naming the cache) while the database keeps serving.

The cache for this test is a `redis-server` of its own on a free port, stopped mid-test: the
shared Redis on 6379 is never touched.
"""

import pytest
from django.test import override_settings

from apps.ledger.models import JournalEntry
from apps.payments.models import Payment
from apps.wallets.models import Wallet
from tests.fakes.redis_server import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_redis(tmp_path):
    with RedisServer(tmp_path / "redis") as server:
        caches = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": server.url,
                "KEY_PREFIX": "resilience",
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
            }
        }
        with override_settings(CACHES=caches):
            yield server


def pay(client, key: str, amount: int = 2_500):
    return client.post(
        "/api/v1/payments",
        {"amount": amount, "currency": "USD", "payment_method": "tok_visa"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def test_with_redis_stopped_money_moves_once_per_key_and_health_says_degraded(
    own_redis, auth_client, client_for, user, other_user, client
):
    # given: the cache works, a first keyed payment is made (and cached) and wallets exist
    first = pay(auth_client, "before-outage")
    assert first.status_code == 201
    source = auth_client.post("/api/v1/wallets", {"currency": "USD"}, format="json").json()
    destination = client_for(other_user).post("/api/v1/wallets", {"currency": "USD"}, format="json").json()
    assert client.get("/api/v1/health").json()["checks"]["cache"]["status"] == "ok"

    # when: Redis stops
    own_redis.stop()

    # then: a payment and its retry with the same key are one payment; the retry is a replay
    made = pay(auth_client, "during-outage")
    again = pay(auth_client, "during-outage")
    assert made.status_code == 201
    assert made.json()["status"] == "succeeded"
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == made.json()
    assert Payment.objects.filter(owner=user).count() == 2
    # the key used before the outage still replays (from PostgreSQL now)
    before = pay(auth_client, "before-outage")
    assert before.headers["Idempotent-Replayed"] == "true"
    assert before.json()["id"] == first.json()["id"]
    # the same key with another body is still refused
    reused = pay(auth_client, "during-outage", amount=9_999)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"

    # and a deposit and a transfer move the money, exactly once per key
    deposit = auth_client.post(
        f"/api/v1/wallets/{source['id']}/deposits",
        {"amount": 10_000, "payment_method": "tok_visa"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="deposit-1",
    )
    assert deposit.status_code == 201
    transfer_body = {"source_wallet": source["id"], "destination_wallet": destination["id"], "amount": 3_000}
    for _ in range(2):
        transfer = auth_client.post(
            "/api/v1/transfers", transfer_body, format="json", HTTP_IDEMPOTENCY_KEY="transfer-1"
        )
        assert transfer.status_code == 201
    assert Wallet.objects.get(pk=source["id"]).balance == 7_000
    assert Wallet.objects.get(pk=destination["id"]).balance == 3_000
    assert JournalEntry.objects.filter(kind="transfer").count() == 1
    assert client_for(other_user).get(f"/api/v1/wallets/{destination['id']}").json()["balance"] == 3_000

    # and health is 503 "degraded", naming the cache, with the database fine
    health = client.get("/api/v1/health")
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    assert "cache" in health.json()["failing"]
    assert health.json()["checks"]["database"]["status"] == "ok"

    # when: Redis is back, health recovers the cache check
    own_redis.start()
    assert client.get("/api/v1/health").json()["checks"]["cache"]["status"] == "ok"
