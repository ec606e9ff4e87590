"""HTTP for subscriptions (API.md "Subscriptions"): parse, call one service, serialize."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import authenticated_user, request_actor
from apps.accounts.throttles import MoneyMovementThrottle
from apps.core.errors import InvalidRequest
from apps.core.fields import AmountField, CurrencyField, IntegerField, MetadataField, TextField
from apps.core.idempotency import idempotent
from apps.core.pagination import PAGE_PARAMETERS, page_params, page_schema, paginate
from apps.core.pci import reject_card_data
from apps.core.schema import blank_or, error_responses
from apps.core.serializers import InputSerializer as BaseInputSerializer
from apps.payments.serializers import PaymentMethodField
from apps.subscriptions import selectors, services
from apps.subscriptions.models import Subscription
from apps.subscriptions.serializers import (
    PAYMENT_METHOD_HELP,
    SubscriptionOutputSerializer,
    subscription_representation,
)


class SubscriptionListCreateApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(BaseInputSerializer):
        plan_id = TextField(max_length=100)
        amount = AmountField()
        currency = CurrencyField()
        billing_cycle = serializers.ChoiceField(choices=Subscription.Cycle.choices)
        payment_method = PaymentMethodField(help_text=PAYMENT_METHOD_HELP)
        trial_days = IntegerField(
            min_value=0,
            max_value=services.MAX_TRIAL_DAYS,
            required=False,
            default=0,
            help_text="Days before the first charge; 0 (default) charges the first period at once.",
        )
        metadata = MetadataField(required=False, default=dict)

        class Meta:
            ref_name = "SubscriptionCreateInput"

    def get_throttles(self):
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        operation_id="subscriptions_list",
        parameters=[
            OpenApiParameter(
                "status", blank_or({"type": "string", "enum": Subscription.Status.values}), required=False
            ),
            *PAGE_PARAMETERS,
        ],
        responses={
            200: page_schema("SubscriptionList", SubscriptionOutputSerializer),
            **error_responses(400),
        },
    )
    def get(self, request: Request) -> Response:
        filters = selectors.parse_subscription_filters(request.query_params)
        page = paginate(
            selectors.subscription_list(principal=authenticated_user(request), filters=filters),
            page_params(request.query_params),
        )
        return Response(
            {"data": [subscription_representation(s) for s in page.items], "next_cursor": page.next_cursor}
        )

    @extend_schema(
        operation_id="subscriptions_create",
        request=InputSerializer,
        responses={
            201: SubscriptionOutputSerializer,
            **error_responses(400, 404, 409, 422, 429),
        },
        description=(
            "Starts a subscription. Without `trial_days` the first period is charged at once; a declined "
            "first charge leaves it `past_due` under the dunning schedule, like a declined renewal."
        ),
    )
    @idempotent
    def post(self, request: Request) -> Response:
        reject_card_data(request.data)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = services.subscription_create(
            actor=request_actor(request), owner=authenticated_user(request), **data.validated_data
        )
        return Response(subscription_representation(subscription), status=201)


class SubscriptionDetailApi(APIView):
    class UpdateInputSerializer(BaseInputSerializer):
        requires_any_field = True  # an update that changes nothing is a 400 `parameter_missing`

        amount = AmountField(required=False)
        billing_cycle = serializers.ChoiceField(choices=Subscription.Cycle.choices, required=False)
        plan_id = TextField(max_length=100, required=False)
        payment_method = PaymentMethodField(required=False, help_text=PAYMENT_METHOD_HELP)
        metadata = MetadataField(required=False)

        class Meta:
            ref_name = "SubscriptionUpdateInput"

    @extend_schema(
        operation_id="subscriptions_retrieve",
        responses={200: SubscriptionOutputSerializer, **error_responses(404)},
    )
    def get(self, request: Request, subscription_id: str) -> Response:
        subscription = selectors.subscription_get(
            principal=authenticated_user(request), subscription_id=subscription_id
        )
        return Response(subscription_representation(subscription))

    @extend_schema(
        operation_id="subscriptions_update",
        request=UpdateInputSerializer,
        responses={200: SubscriptionOutputSerializer, **error_responses(400, 404, 409)},
        description=(
            "Amount, billing cycle and plan take effect from the next period (shown in `pending_update` "
            "until then); a new payment method from the next charge attempt; metadata at once "
            '(keys merged, a key set to "" removed). A canceled or unpaid subscription is a 409.'
        ),
    )
    def patch(self, request: Request, subscription_id: str) -> Response:
        reject_card_data(request.data)
        data = self.UpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = services.subscription_update(
            actor=request_actor(request),
            owner=authenticated_user(request),
            subscription_id=subscription_id,
            **data.validated_data,
        )
        return Response(subscription_representation(subscription))

    @extend_schema(
        operation_id="subscriptions_cancel",
        parameters=[
            OpenApiParameter(
                "at_period_end",
                OpenApiTypes.BOOL,
                required=False,
                description="true: keep it until the end of the paid period, with no further charge.",
            )
        ],
        responses={200: SubscriptionOutputSerializer, **error_responses(400, 404, 409)},
    )
    def delete(self, request: Request, subscription_id: str) -> Response:
        at_period_end = _boolean(request.query_params.get("at_period_end"), param="at_period_end")
        subscription = services.subscription_cancel(
            actor=request_actor(request),
            owner=authenticated_user(request),
            subscription_id=subscription_id,
            at_period_end=at_period_end,
        )
        return Response(subscription_representation(subscription))


def _boolean(value: str | None, *, param: str) -> bool:
    if value in (None, "", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise InvalidRequest(f"{param} must be true or false", param=param)
