"""HTTP for payments: parse, call one service, serialize. Paths and fields as API.md fixes them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.throttles import MoneyMovementThrottle
from apps.core import cache as versioned
from apps.core.fields import AmountField, CurrencyField, MetadataField, TextField
from apps.core.idempotency import idempotent
from apps.core.pagination import PAGE_PARAMETERS, page_params, page_schema, paginate
from apps.core.pci import reject_card_data
from apps.core.schema import blank_or
from apps.payments import cache as payment_cache
from apps.payments import selectors, services
from apps.payments.errors import ReviewPermissionRequired
from apps.payments.models import Payment, Refund
from apps.payments.serializers import PaymentMethodField

TIMESTAMP_FILTER = blank_or({"type": "string", "format": "date-time"})


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def payment_representation(payment: Payment) -> dict[str, Any]:
    """The payment object of API.md, built by hand: lists serialize thousands of these."""
    details: dict[str, Any] = {"type": payment.method_type}
    if payment.method_type == Payment.MethodType.WALLET:
        details["wallet"] = payment.wallet_id
    elif payment.card_brand:
        details["brand"], details["last4"] = payment.card_brand, payment.card_last4
    review = None
    # Only a payment with risk reasons can have a review: the others are spared the lookup.
    if payment.risk_reasons and hasattr(payment, "review"):
        r = payment.review
        review = {
            "status": r.status,
            "reasons": r.reasons,
            "decided_by": r.decided_by_id,
            "decided_at": _iso(r.decided_at),
            "note": r.note or None,
        }
    return {
        "id": payment.pk,
        "object": "payment",
        "amount": payment.amount,
        "amount_captured": payment.amount_captured,
        "amount_refunded": payment.amount_refunded,
        "currency": payment.currency,
        "status": payment.status,
        "capture_method": payment.capture_method,
        "payment_method_details": details,
        "gateway_reference": payment.gateway_reference or None,
        "description": payment.description or None,
        "customer_id": payment.customer_id or None,
        "metadata": payment.metadata,
        "failure_code": payment.failure_code or None,
        "failure_message": payment.failure_message or None,
        "review": review,
        "dispute": (
            {"reference": payment.dispute_reference, "reason": payment.dispute_reason}
            if payment.dispute_reference
            else None
        ),
        "subscription": payment.subscription_id or None,
        "created_at": _iso(payment.created_at),
        "updated_at": _iso(payment.updated_at),
    }


class ReviewSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["open", "approved", "denied"])
    reasons = serializers.ListField(child=serializers.CharField())
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField(allow_null=True)


class DisputeSerializer(serializers.Serializer):
    reference = serializers.CharField()
    reason = serializers.CharField()


class PaymentMethodDetailsSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=Payment.MethodType.choices)
    brand = serializers.CharField(required=False)
    last4 = serializers.CharField(required=False)
    wallet = serializers.CharField(required=False)


class PaymentOutputSerializer(serializers.Serializer):
    """Documents the payment object; `to_representation` is the hand-written fast path."""

    id = serializers.CharField()
    object = serializers.CharField()
    amount = serializers.IntegerField()
    amount_captured = serializers.IntegerField()
    amount_refunded = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=Payment.Status.choices)
    capture_method = serializers.ChoiceField(choices=Payment.CaptureMethod.choices)
    payment_method_details = PaymentMethodDetailsSerializer()
    gateway_reference = serializers.CharField(allow_null=True)
    description = serializers.CharField(allow_null=True)
    customer_id = serializers.CharField(allow_null=True)
    metadata = serializers.DictField()
    failure_code = serializers.CharField(allow_null=True)
    failure_message = serializers.CharField(allow_null=True)
    review = ReviewSerializer(allow_null=True)
    dispute = DisputeSerializer(allow_null=True)
    subscription = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, instance: Payment) -> dict[str, Any]:
        return payment_representation(instance)


class RefundOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    payment = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=Refund.Status.choices)
    reason = serializers.CharField(allow_null=True)
    failure_code = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, refund: Refund) -> dict[str, Any]:
        return {
            "id": refund.pk,
            "object": "refund",
            "payment": refund.payment_id,
            "amount": refund.amount,
            "currency": refund.payment.currency,
            "status": refund.status,
            "reason": refund.reason or None,
            "failure_code": refund.failure_code or None,
            "created_at": _iso(refund.created_at),
        }


def _validated(serializer_class: type[serializers.Serializer], request) -> serializers.Serializer:
    """Refuses card data anywhere in the body first (never echoed), then validates the input."""
    reject_card_data(request.data)
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data


class PaymentListCreateApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(serializers.Serializer):
        amount = AmountField()
        currency = CurrencyField()
        payment_method = PaymentMethodField(max_length=300)
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
        sees_all = selectors.can_see_all_payments(request.user)
        scope = payment_cache.ALL_PAYMENTS if sees_all else payment_cache.owner_scope(request.user.pk)
        key = f"list:{'all' if sees_all else 'own'}:{sorted(filters.items())}:{params.cache_key}"

        def load() -> dict[str, Any]:
            page = paginate(selectors.payment_list(principal=request.user, filters=filters), params)
            return {"data": [payment_representation(p) for p in page.items], "next_cursor": page.next_cursor}

        return Response(versioned.read_through(scope=scope, key=key, load=load))

    @extend_schema(
        operation_id="payments_create", request=InputSerializer, responses={201: PaymentOutputSerializer}
    )
    @idempotent
    def post(self, request):
        data = _validated(self.InputSerializer, request)
        payment = services.payment_create(actor=request.user, owner=request.user, **data.validated_data)
        return Response(payment_representation(payment), status=201)


class PaymentDetailApi(APIView):
    @extend_schema(operation_id="payments_retrieve", responses={200: PaymentOutputSerializer})
    def get(self, request, payment_id: str):
        payment = selectors.payment_get(principal=request.user, payment_id=payment_id)
        return Response(payment_representation(payment))


class PaymentCaptureApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(serializers.Serializer):
        amount = AmountField(required=False)

    @extend_schema(
        operation_id="payments_capture", request=InputSerializer, responses={200: PaymentOutputSerializer}
    )
    @idempotent
    def post(self, request, payment_id: str):
        data = _validated(self.InputSerializer, request)
        payment = services.payment_capture(
            actor=request.user,
            owner=request.user,
            payment_id=payment_id,
            amount=data.validated_data.get("amount"),
        )
        return Response(payment_representation(payment))


class PaymentCancelApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(serializers.Serializer):
        reason = TextField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="payments_cancel", request=InputSerializer, responses={200: PaymentOutputSerializer}
    )
    @idempotent
    def post(self, request, payment_id: str):
        data = _validated(self.InputSerializer, request)
        payment = services.payment_cancel(
            actor=request.user,
            owner=request.user,
            payment_id=payment_id,
            reason=data.validated_data["reason"],
        )
        return Response(payment_representation(payment))


class PaymentRefundCreateApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(serializers.Serializer):
        amount = AmountField(required=False)
        reason = TextField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="payments_refund", request=InputSerializer, responses={201: RefundOutputSerializer}
    )
    @idempotent
    def post(self, request, payment_id: str):
        data = _validated(self.InputSerializer, request)
        refund = services.payment_refund(
            actor=request.user,
            owner=request.user,
            payment_id=payment_id,
            amount=data.validated_data.get("amount"),
            reason=data.validated_data["reason"],
        )
        return Response(RefundOutputSerializer(refund).data, status=201)


class PaymentReviewApi(APIView):
    class InputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=["approve", "deny"])
        note = TextField(max_length=2000, allow_blank=False, trim_whitespace=True)

    @extend_schema(
        operation_id="payments_review", request=InputSerializer, responses={200: PaymentOutputSerializer}
    )
    @idempotent
    def put(self, request, payment_id: str):
        if not selectors.can_see_all_payments(request.user):
            raise ReviewPermissionRequired()
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        payment = services.review_decide(actor=request.user, payment_id=payment_id, **data.validated_data)
        return Response(
            payment_representation(selectors.payment_get(principal=request.user, payment_id=payment.pk))
        )
