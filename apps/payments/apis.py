"""HTTP for payments: parse, call one service, serialize. Paths and fields as API.md fixes them."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import authenticated_user, request_actor
from apps.accounts.throttles import MoneyMovementThrottle
from apps.core import cache as versioned
from apps.core import prefer
from apps.core.fields import AmountField, CurrencyField, MetadataField, TextField
from apps.core.idempotency import idempotent
from apps.core.pagination import PAGE_PARAMETERS, page_params, page_schema, paginate
from apps.core.pci import reject_card_data
from apps.core.schema import blank_or
from apps.core.serializers import InputSerializer as BaseInputSerializer
from apps.payments import cache as payment_cache
from apps.payments import selectors, services
from apps.payments.errors import ReviewPermissionRequired
from apps.payments.models import Payment
from apps.payments.serializers import PaymentMethodField, PaymentOutputSerializer, RefundOutputSerializer
from apps.wallets.apis import TransactionOutputSerializer

TIMESTAMP_FILTER = blank_or({"type": "string", "format": "date-time"})


def payment_representation(payment: Payment) -> dict[str, Any]:
    """The payment object of API.md (declared once, by `PaymentOutputSerializer`)."""
    return PaymentOutputSerializer.represent(payment)


def _validated(serializer_class: type[serializers.Serializer], request) -> serializers.Serializer:
    """Refuses card data anywhere in the body first (never echoed), then validates the input."""
    reject_card_data(request.data)
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data


class PaymentListCreateApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(BaseInputSerializer):
        amount = AmountField()
        currency = CurrencyField()
        payment_method = PaymentMethodField()
        capture_method = serializers.ChoiceField(
            choices=Payment.CaptureMethod.choices, default=Payment.CaptureMethod.AUTOMATIC
        )
        description = TextField(max_length=500, required=False, allow_blank=True, default="")
        customer_id = TextField(max_length=100, required=False, allow_blank=True, default="")
        metadata = MetadataField(required=False, default=dict)
        receipt_email = serializers.EmailField(required=False, allow_blank=True, default="")

    def get_throttles(self):
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        operation_id="payments_list",
        parameters=[
            OpenApiParameter(
                "status", blank_or({"type": "string", "enum": Payment.Status.values}), required=False
            ),
            OpenApiParameter("customer_id", str, required=False),
            OpenApiParameter(
                "created_gte",
                TIMESTAMP_FILTER,
                description="ISO 8601 timestamp with a timezone",
                required=False,
            ),
            OpenApiParameter(
                "created_lt",
                TIMESTAMP_FILTER,
                description="ISO 8601 timestamp with a timezone",
                required=False,
            ),
            OpenApiParameter("subscription", str, required=False),
            *PAGE_PARAMETERS,
        ],
        responses={200: page_schema("PaymentList", PaymentOutputSerializer)},
    )
    def get(self, request):
        filters = selectors.parse_payment_filters(request.query_params)
        params = page_params(request.query_params)
        sees_all = selectors.can_see_all_payments(authenticated_user(request))
        scope = (
            payment_cache.ALL_PAYMENTS
            if sees_all
            else payment_cache.owner_scope(authenticated_user(request).pk)
        )
        key = f"list:{'all' if sees_all else 'own'}:{sorted(filters.items())}:{params.cache_key}"

        def load() -> bytes:
            page = paginate(
                selectors.payment_list(principal=authenticated_user(request), filters=filters), params
            )
            data = {"data": [payment_representation(p) for p in page.items], "next_cursor": page.next_cursor}
            return JSONRenderer().render(data)

        # Cached as the JSON the client receives: a hit is served without rendering it again.
        return HttpResponse(
            versioned.read_through(scope=scope, key=key, load=load), content_type="application/json"
        )

    @extend_schema(
        operation_id="payments_create",
        request=InputSerializer,
        parameters=[
            OpenApiParameter(
                prefer.PREFER_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="`respond-async`: answer 202 with the card payment `pending` at once; a "
                "worker charges it and its `payment.*` event tells the outcome.",
            )
        ],
        responses={
            201: PaymentOutputSerializer,
            202: OpenApiResponse(
                PaymentOutputSerializer,
                description="Accepted (`Prefer: respond-async`, a card payment): `pending`, charged by a "
                "worker. Header `Preference-Applied: respond-async`.",
            ),
        },
    )
    @idempotent
    def post(self, request):
        data = _validated(self.InputSerializer, request)
        respond_async = prefer.prefers(request, prefer.RESPOND_ASYNC)
        payment = services.payment_create(
            actor=request_actor(request),
            owner=authenticated_user(request),
            respond_async=respond_async,
            **data.validated_data,
        )
        if respond_async and payment.method_type == Payment.MethodType.CARD:
            return Response(
                payment_representation(payment), status=202, headers=prefer.applied(prefer.RESPOND_ASYNC)
            )
        return Response(payment_representation(payment), status=201)


class PaymentDetailApi(APIView):
    @extend_schema(operation_id="payments_retrieve", responses={200: PaymentOutputSerializer})
    def get(self, request, payment_id: str):
        payment = selectors.payment_get(principal=authenticated_user(request), payment_id=payment_id)
        return Response(payment_representation(payment))


class PaymentCaptureApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(BaseInputSerializer):
        amount = AmountField(required=False)

    @extend_schema(
        operation_id="payments_capture", request=InputSerializer, responses={200: PaymentOutputSerializer}
    )
    @idempotent
    def post(self, request, payment_id: str):
        data = _validated(self.InputSerializer, request)
        payment = services.payment_capture(
            actor=request_actor(request),
            owner=authenticated_user(request),
            payment_id=payment_id,
            amount=data.validated_data.get("amount"),
        )
        return Response(payment_representation(payment))


class PaymentCancelApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(BaseInputSerializer):
        reason = TextField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="payments_cancel", request=InputSerializer, responses={200: PaymentOutputSerializer}
    )
    @idempotent
    def post(self, request, payment_id: str):
        data = _validated(self.InputSerializer, request)
        payment = services.payment_cancel(
            actor=request_actor(request),
            owner=authenticated_user(request),
            payment_id=payment_id,
            reason=data.validated_data["reason"],
        )
        return Response(payment_representation(payment))


class PaymentRefundCreateApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(BaseInputSerializer):
        amount = AmountField(required=False)
        reason = TextField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="payments_refund", request=InputSerializer, responses={201: RefundOutputSerializer}
    )
    @idempotent
    def post(self, request, payment_id: str):
        data = _validated(self.InputSerializer, request)
        refund = services.payment_refund(
            actor=request_actor(request),
            owner=authenticated_user(request),
            payment_id=payment_id,
            amount=data.validated_data.get("amount"),
            reason=data.validated_data["reason"],
        )
        return Response(RefundOutputSerializer.represent(refund), status=201)


class PaymentReviewApi(APIView):
    class InputSerializer(BaseInputSerializer):
        decision = serializers.ChoiceField(choices=["approve", "deny"])
        note = TextField(max_length=2000, allow_blank=False, trim_whitespace=True)

    @extend_schema(
        operation_id="payments_review", request=InputSerializer, responses={200: PaymentOutputSerializer}
    )
    @idempotent
    def put(self, request, payment_id: str):
        if not selectors.can_see_all_payments(authenticated_user(request)):
            raise ReviewPermissionRequired()
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        payment = services.review_decide(
            actor=request_actor(request), payment_id=payment_id, **data.validated_data
        )
        return Response(
            payment_representation(
                selectors.payment_get(principal=authenticated_user(request), payment_id=payment.pk)
            )
        )


class DepositReviewApi(APIView):
    """`PUT /transactions/{id}/review`: the same decision as a payment's review, for a deposit
    held `in_review` (same body, permission, four-eyes rule and errors); answers the deposit."""

    InputSerializer = PaymentReviewApi.InputSerializer

    @extend_schema(
        operation_id="deposits_review", request=InputSerializer, responses={200: TransactionOutputSerializer}
    )
    @idempotent
    def put(self, request, transaction_id: str):
        if not selectors.can_see_all_payments(authenticated_user(request)):
            raise ReviewPermissionRequired()
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        txn = services.review_decide(
            actor=request_actor(request), deposit_id=transaction_id, **data.validated_data
        )
        return Response(TransactionOutputSerializer.represent(txn))
