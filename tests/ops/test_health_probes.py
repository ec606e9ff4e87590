"""Liveness vs readiness: what takes a process out of rotation, and what gets it restarted."""

import pytest
from django.db import connections
from django.test import override_settings

from apps.core import health

DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
}


@pytest.fixture
def database_down():
    """The default database unreachable (its port points where nothing listens) for the test."""
    database = connections["default"]
    port = database.settings_dict["PORT"]
    database.close()
    database.settings_dict["PORT"] = 1
    yield
    database.close()
    database.settings_dict["PORT"] = port


@pytest.mark.django_db
def test_ready_checks_database_cache_and_migrations(client):
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "migrations"}


@pytest.mark.django_db
@override_settings(CACHES=DEAD_REDIS)
def test_without_redis_the_process_is_alive_but_not_ready(client):
    assert client.get("/api/v1/health/live").json() == {"status": "ok"}
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["cache"]


@pytest.mark.django_db(transaction=True)
def test_without_the_database_the_process_is_alive_but_not_ready(client, database_down):
    live = client.get("/api/v1/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = client.get("/api/v1/health/ready")
    assert ready.status_code == 503
    assert "database" in ready.json()["failing"]


@pytest.mark.django_db
def test_a_broker_outage_leaves_the_process_ready_while_health_reports_it(client, broker_down):
    # Events wait in the outbox while the broker is down: no reason to stop serving requests.
    assert client.get("/api/v1/health/ready").status_code == 200
    health_response = client.get("/api/v1/health")
    assert health_response.status_code == 503
    assert health_response.json()["failing"] == ["broker"]


@pytest.mark.django_db
def test_a_process_whose_migrations_are_not_applied_is_not_ready(client, monkeypatch):
    # given the database lacks the latest migration of an app (a new image started before migrate)
    from django.db.migrations.recorder import MigrationRecorder

    latest = MigrationRecorder.Migration.objects.filter(app="core").order_by("-id").first()
    latest.delete()
    monkeypatch.setattr(health, "_migrations_applied", False)

    response = client.get("/api/v1/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["migrations"]
    assert response.json()["checks"]["migrations"]["status"] == "down"


def test_live_needs_nothing_at_all(client):
    # no database access allowed in this test: liveness must not touch it
    response = client.get("/api/v1/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
