"""A money-moving endpoint for the idempotency tests (`pytest.mark.urls` points here).

Each execution leaves a visible row (an OutboxEvent of type EXECUTED, written in its own
transaction), so "ran once" is a row count.
"""

from __future__ import annotations

import threading

from django.db import transaction
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from apps.core.errors import InvalidRequest
from apps.core.fields import AmountField
from apps.core.idempotency import idempotent
from apps.core.models import OutboxEvent

EXECUTED = "test.idempotent_view_executed"
CHARGES = "/api/v1/test/charges"
OTHER_CHARGES = "/api/v1/test/other-charges"

# Holds the "slow" outcome inside the view until a test lets it finish.
release_slow_view = threading.Event()


class ChargeCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        amount = AmountField()
        outcome = serializers.ChoiceField(
            choices=["ok", "declined", "crash", "slow", "refused_early", "crash_early"], default="ok"
        )

    @extend_schema(request=InputSerializer, responses={201: OpenApiTypes.OBJECT})
    @idempotent
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["outcome"] == "slow":
            release_slow_view.wait(timeout=10)
        if data["outcome"] in ("refused_early", "crash_early"):
            with transaction.atomic():
                OutboxEvent.objects.create(
                    event_type=EXECUTED, aggregate_type="user", aggregate_id=request.user.pk, payload={}
                )
                if data["outcome"] == "refused_early":
                    raise InvalidRequest("The wallet balance is too low.", code="insufficient_funds")
                raise RuntimeError("the process fell over before the work committed")
        execution = _record_execution(principal=request.user.pk, amount=data["amount"])
        if data["outcome"] == "declined":
            raise InvalidRequest("The wallet balance is too low.", code="insufficient_funds", param="amount")
        if data["outcome"] == "crash":
            raise RuntimeError("the process fell over after the work was committed")
        return Response({"id": execution.id, "amount": data["amount"]}, status=201)


def _record_execution(*, principal: str, amount: int) -> OutboxEvent:
    with transaction.atomic(durable=True):
        return OutboxEvent.objects.create(
            event_type=EXECUTED, aggregate_type="user", aggregate_id=principal, payload={"amount": amount}
        )


urlpatterns = [
    path(CHARGES.removeprefix("/"), ChargeCreateApi.as_view()),
    path(OTHER_CHARGES.removeprefix("/"), ChargeCreateApi.as_view()),
]


def executions() -> int:
    return OutboxEvent.objects.filter(event_type=EXECUTED).count()


def post(client: APIClient, body, *, key: str | None = "key-1", url: str = CHARGES):
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(url, body, format="json", headers=headers)
