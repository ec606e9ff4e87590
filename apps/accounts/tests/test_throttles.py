import pytest
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from apps.accounts.services import api_key_create, auth_session_start
from apps.accounts.throttles import MoneyMovementThrottle

pytestmark = pytest.mark.django_db


class MoneyApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    def post(self, request):
        return Response({"ok": True})


@pytest.fixture
def money_rate(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "money": "3/minute"},
    }


def call(authorization: str, remote_addr: str = "127.0.0.1"):
    request = APIRequestFactory().post(
        "/money", {}, format="json", HTTP_AUTHORIZATION=authorization, REMOTE_ADDR=remote_addr
    )
    return MoneyApi.as_view()(request)


def test_money_movement_is_limited_per_principal_across_jwt_and_api_keys(money_rate, user, other_user):
    jwt = f"Bearer {auth_session_start(user=user).tokens.access}"
    key = f"Api-Key {api_key_create(user=user, name='server', actor=user)[1]}"
    assert [call(jwt).status_code, call(key).status_code, call(jwt, "10.9.9.9").status_code] == [
        200,
        200,
        200,
    ]

    refused = call(key)

    assert refused.status_code == 429
    assert refused.data["error"]["type"] == "rate_limit_error"
    assert 0 < int(refused["Retry-After"]) <= 60
    # someone else, from the same address, is not affected
    assert call(f"Bearer {auth_session_start(user=other_user).tokens.access}").status_code == 200
