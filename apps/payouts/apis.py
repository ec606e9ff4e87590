"""HTTP for payouts (API.md "Payouts"): parse, call one service, serialize."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import authenticated_user, request_actor
from apps.accounts.throttles import MoneyMovementThrottle
from apps.core.fields import AmountField, TextField
from apps.core.idempotency import idempotent, idempotent_required
from apps.core.pagination import PAGE_PARAMETERS, page_body, page_params, page_schema, paginate
from apps.core.serializers import InputSerializer as BaseInputSerializer
from apps.payouts import services
from apps.payouts.selectors import payout_get, payout_list
from apps.payouts.serializers import PayoutOutputSerializer
from apps.wallets.selectors import wallet_get

ERROR_RESPONSES = {
    400: OpenApiResponse(description="Invalid request (API.md error envelope)."),
    401: OpenApiResponse(description="Not authenticated."),
    404: OpenApiResponse(description="No such wallet or payout (or not yours)."),
}
CONFLICT = OpenApiResponse(description="payout_unexpected_state: only a pending payout can be canceled.")


class WalletPayoutsApi(APIView):
    """POST /wallets/{id}/payouts (money leaves the wallet) and GET /wallets/{id}/payouts."""

    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(BaseInputSerializer):
        amount = AmountField()
        destination = TextField(
            max_length=255,
            help_text="The gateway's token of a bank account (simulated: btok_success, "
            "btok_accountClosed). Account and card numbers are refused.",
        )
        description = TextField(max_length=500, required=False, allow_blank=True)

        class Meta:
            ref_name = "PayoutCreateInput"

    def get_throttles(self):
        # Only the money-moving POST counts against the money-movement limit.
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        operation_id="wallets_payouts_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_schema("PayoutList", PayoutOutputSerializer), **ERROR_RESPONSES},
    )
    def get(self, request: Request, wallet_id: str) -> Response:
        params = page_params(request.query_params)
        page = paginate(payout_list(user=authenticated_user(request), wallet_id=wallet_id), params)
        return Response(page_body(page, PayoutOutputSerializer))

    @extend_schema(
        operation_id="wallets_payouts_create",
        request=InputSerializer,
        responses={
            201: OpenApiResponse(
                PayoutOutputSerializer,
                description="The payout, `pending`: the amount has left the wallet (held in transit); "
                "a worker sends it within seconds (`in_transit`, then `paid` or `failed`, a failed one "
                "put back). A risk rule may hold it for review (`review.status: open`): still `pending`, "
                "sent once a reviewer approves, canceled and put back if denied.",
            ),
            400: OpenApiResponse(
                description="insufficient_funds, wallet_inactive, destination_invalid, "
                "raw_card_data_rejected or an invalid parameter; nothing moved."
            ),
            401: ERROR_RESPONSES[401],
            404: ERROR_RESPONSES[404],
        },
    )
    @idempotent_required
    def post(self, request: Request, wallet_id: str) -> Response:
        user = authenticated_user(request)
        wallet = wallet_get(user=user, wallet_id=wallet_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payout = services.payout_create(
            actor=request_actor(request),
            user=user,
            wallet_id=wallet.pk,
            amount=data["amount"],
            destination=data["destination"],
            description=data.get("description") or None,
        )
        return Response(PayoutOutputSerializer.represent(payout), status=201)


class PayoutDetailApi(APIView):
    @extend_schema(
        operation_id="payouts_retrieve", responses={200: PayoutOutputSerializer, **ERROR_RESPONSES}
    )
    def get(self, request: Request, payout_id: str) -> Response:
        payout = payout_get(user=authenticated_user(request), payout_id=payout_id)
        return Response(PayoutOutputSerializer.represent(payout))


class PayoutCancelApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(BaseInputSerializer):
        class Meta:
            ref_name = "PayoutCancelInput"

    @extend_schema(
        operation_id="payouts_cancel",
        request=InputSerializer,
        responses={200: PayoutOutputSerializer, 409: CONFLICT, **ERROR_RESPONSES},
    )
    @idempotent
    def post(self, request: Request, payout_id: str) -> Response:
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        payout = services.payout_cancel(
            actor=request_actor(request), user=authenticated_user(request), payout_id=payout_id
        )
        return Response(PayoutOutputSerializer.represent(payout))
