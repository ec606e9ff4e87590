"""Every error under /api/ leaves in API.md's envelope, with no traceback, whatever raised it."""

import io
import json
import logging

import pytest
from django.test import override_settings
from django.urls import include, path
from pythonjsonlogger.json import JsonFormatter
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.correlation import CorrelationIdLogFilter
from apps.core.fields import AmountField, CurrencyField


class _EchoMoneyApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        amount = AmountField()
        currency = CurrencyField()

    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(data.validated_data, status=201)


class _CrashApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("SELECT card_number FROM secrets -- internal detail")


urlpatterns = [
    path("api/v1/test/money", _EchoMoneyApi.as_view()),
    path("api/v1/test/crash", _CrashApi.as_view()),
    path("api/v1/", include("apps.core.urls")),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def _error(response):
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"type", "code", "message", "param"} <= set(body["error"])
    assert "Traceback" not in response.content.decode()
    return body["error"]


def _post(client, payload, content_type="application/json"):
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return client.post("/api/v1/test/money", data=body, content_type=content_type)


def test_unknown_path_is_404_envelope(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert _error(response)["type"] == "invalid_request_error"


def test_trailing_slash_is_not_redirected(client):
    response = client.post("/api/v1/test/money/", data="{}", content_type="application/json")
    assert response.status_code == 404
    _error(response)


def test_wrong_method_is_405_envelope(client):
    response = client.delete("/api/v1/health")
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"


def test_malformed_json_is_400_envelope(client):
    response = _post(client, '{"amount": 10,')
    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_json"


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "42", "null"])
def test_json_that_is_not_an_object_is_400(client, body):
    response = _post(client, body)
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_json"


def test_wrong_content_type_is_415_envelope(client):
    response = _post(client, "amount=10&currency=usd", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    error = _error(response)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "unsupported_media_type"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_oversized_body_is_refused_before_parsing(client):
    response = _post(client, {"amount": 10, "currency": "usd", "padding": "x" * 2048})
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"


def test_crash_is_logged_as_json_with_the_requests_correlation_id(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(CorrelationIdLogFilter())
    handler.setFormatter(JsonFormatter("%(levelname)s %(message)s %(correlation_id)s"))
    logger = logging.getLogger("apps.core.middleware")
    logger.addHandler(handler)
    try:
        client.get("/api/v1/test/crash", HTTP_X_CORRELATION_ID="trace-crash-1")
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["correlation_id"] == "trace-crash-1"
    assert line["levelname"] == "ERROR"
    assert "exc_info" in line  # the traceback goes to the log, never to the client


def test_crash_is_500_envelope_without_internals(client):
    response = client.get("/api/v1/test/crash")
    assert response.status_code == 500
    error = _error(response)
    assert error["type"] == "api_error"
    assert "SELECT" not in response.content.decode()


@override_settings(DEBUG=True)
def test_debug_mode_still_answers_in_the_envelope(client):
    assert client.get("/api/v1/test/crash").status_code == 500
    response = client.get("/api/v1/missing")
    assert response.status_code == 404
    _error(response)


@pytest.mark.parametrize(
    "amount", [0, -1, 10.5, 10.0, "10", 1e30, None, True, 100_000_000_000, 10**40, [], {"v": 1}]
)
def test_amounts_outside_the_contract_are_refused(client, amount):
    response = _post(client, {"amount": amount, "currency": "USD"})
    assert response.status_code == 400
    error = _error(response)
    assert error["param"] == "amount"
    assert error["code"] == "parameter_invalid"


def test_missing_amount_is_parameter_missing(client):
    response = _post(client, {"currency": "USD"})
    assert response.status_code == 400
    assert _error(response) | {"details": None} == {
        "type": "invalid_request_error",
        "code": "parameter_missing",
        "message": "amount: This field is required.",
        "param": "amount",
        "details": None,
    }


@pytest.mark.parametrize("amount", [1, 99_999_999_999])
def test_amount_bounds_are_inclusive(client, amount):
    response = _post(client, {"amount": amount, "currency": "eur"})
    assert response.status_code == 201
    assert response.json() == {"amount": amount, "currency": "EUR"}


@pytest.mark.parametrize("currency", ["usd", "Usd", "USD"])
def test_currency_accepted_in_any_case_returned_upper(client, currency):
    assert _post(client, {"amount": 5, "currency": currency}).json()["currency"] == "USD"


@pytest.mark.parametrize("currency", ["US", "USDD", "XXX", "", 840, None, "u$d"])
def test_currency_that_is_not_iso_4217_is_refused(client, currency):
    response = _post(client, {"amount": 5, "currency": currency})
    assert response.status_code == 400
    assert _error(response)["param"] == "currency"


def test_nan_and_infinity_are_not_json(client):
    response = _post(client, '{"amount": NaN, "currency": "USD"}')
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_json"
