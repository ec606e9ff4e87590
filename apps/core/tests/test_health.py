import pytest
from django.test import override_settings

from tests.workers import BROKER_URL, tasks_published_to

pytestmark = pytest.mark.django_db

DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
}


def test_health_is_ok_without_authentication(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "ok"


@override_settings(CACHES=DEAD_REDIS)
def test_health_is_503_naming_the_cache_when_redis_is_down(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["cache"]
    assert body["checks"]["database"]["status"] == "ok"


def test_health_reaches_a_real_broker(client):
    with tasks_published_to(BROKER_URL):
        response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["checks"]["broker"]["status"] == "ok"


def test_health_is_503_naming_the_broker_when_it_is_down(client):
    with tasks_published_to():
        response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


def test_metrics_are_prometheus_text(client):
    client.get("/api/v1/health")
    response = client.get("/api/v1/metrics")
    assert response.status_code == 200
    assert "django_http_requests_total_by_method_total" in response.content.decode()


def test_schema_and_docs_are_served(client):
    schema = client.get("/api/v1/schema?format=json")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    assert "/api/v1/health" in schema.json()["paths"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
    assert b"cdn.jsdelivr" not in docs.content  # assets are served locally (no network)
