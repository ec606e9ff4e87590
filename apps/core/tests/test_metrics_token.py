"""/api/v1/metrics with METRICS_TOKEN set: only `Authorization: Bearer <METRICS_TOKEN>` reads it."""

import pytest

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-0123456789"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def _assert_refused(response):
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.json()["error"]["code"] == "metrics_token_invalid"
    body = response.content.decode()
    # nothing of the metrics (payment counts, the review queue), nor the expected token, leaks
    assert "paydesk_" not in body
    assert "django_http" not in body
    assert TOKEN not in body


def test_metrics_without_the_token_are_refused_in_the_envelope(api_client, metrics_token):
    _assert_refused(api_client.get("/api/v1/metrics"))


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        f"Api-Key {TOKEN}",
        TOKEN,
        "Bearer",
    ],
)
def test_metrics_with_a_wrong_token_or_scheme_are_refused(api_client, metrics_token, authorization):
    _assert_refused(api_client.get("/api/v1/metrics", HTTP_AUTHORIZATION=authorization))


def test_metrics_with_the_token_are_served(api_client, metrics_token):
    response = api_client.get("/api/v1/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "django_http_requests_total_by_method_total" in response.content.decode()


def test_a_user_session_is_no_metrics_token(auth_client, metrics_token):
    _assert_refused(auth_client.get("/api/v1/metrics"))


def test_without_metrics_token_set_the_metrics_stay_open_for_local_runs(api_client, settings):
    settings.METRICS_TOKEN = ""
    assert api_client.get("/api/v1/metrics").status_code == 200
