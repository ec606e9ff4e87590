import pytest

pytestmark = pytest.mark.django_db


def test_correlation_id_is_echoed(client):
    response = client.get("/api/v1/health", HTTP_X_CORRELATION_ID="req-123.abc")
    assert response["X-Correlation-ID"] == "req-123.abc"


def test_correlation_id_is_generated_when_absent(client):
    first = client.get("/api/v1/health")["X-Correlation-ID"]
    second = client.get("/api/v1/health")["X-Correlation-ID"]
    assert first
    assert first != second


def test_unsafe_correlation_id_is_replaced_not_echoed(client):
    hostile = "x\r\nSet-Cookie: a=b" + "y" * 200
    response = client.get("/api/v1/health", HTTP_X_CORRELATION_ID=hostile)
    assert response["X-Correlation-ID"] != hostile
    assert len(response["X-Correlation-ID"]) == 32


def test_error_responses_carry_the_correlation_id_too(client):
    response = client.get("/api/v1/nowhere", HTTP_X_CORRELATION_ID="trace-404")
    assert response.status_code == 404
    assert response["X-Correlation-ID"] == "trace-404"
