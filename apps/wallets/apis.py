"""HTTP for wallets and transfers (API.md "Wallets and transfers"): parse, call one service, serialize."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import authenticated_user, request_actor
from apps.accounts.throttles import MoneyMovementThrottle
from apps.core.errors import ApplicationError
from apps.core.fields import AmountField, BooleanField, CurrencyField, TextField
from apps.core.idempotency import idempotent, idempotent_required
from apps.core.pagination import PAGE_PARAMETERS, page_body, page_params, page_schema, paginate
from apps.core.serializers import InputSerializer as BaseInputSerializer
from apps.gateways.payment_methods import PAYMENT_METHOD_MAX_LENGTH
from apps.wallets.selectors import wallet_get, wallet_list, wallet_transactions
from apps.wallets.serializers import TransactionOutputSerializer, WalletOutputSerializer
from apps.wallets.services import (
    TransferRequest,
    wallet_create,
    wallet_deposit,
    wallet_transfer,
    wallet_transfer_batch,
)
from apps.wallets.transfers import BATCH_MAX_ITEMS

ERROR_RESPONSES = {
    400: OpenApiResponse(description="Invalid request (API.md error envelope)."),
    401: OpenApiResponse(description="Not authenticated."),
    404: OpenApiResponse(description="No such wallet (or not yours)."),
}


class WalletsApi(APIView):
    """GET /wallets (the caller's wallets) and POST /wallets (open one)."""

    class CreateInputSerializer(BaseInputSerializer):
        currency = CurrencyField()

        class Meta:
            ref_name = "WalletCreateInput"

    @extend_schema(
        operation_id="wallets_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_schema("WalletList", WalletOutputSerializer), **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        page = wallet_list(user=authenticated_user(request), params=page_params(request.query_params))
        return Response(page_body(page, WalletOutputSerializer))

    @extend_schema(
        operation_id="wallets_create",
        request=CreateInputSerializer,
        responses={
            201: WalletOutputSerializer,
            409: OpenApiResponse(description="wallet_exists: one wallet per user per currency."),
            **ERROR_RESPONSES,
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = self.CreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        wallet = wallet_create(
            actor=request_actor(request), user=authenticated_user(request), **serializer.validated_data
        )
        return Response(WalletOutputSerializer.represent(wallet), status=201)


class WalletDetailApi(APIView):
    @extend_schema(
        operation_id="wallets_retrieve", responses={200: WalletOutputSerializer, **ERROR_RESPONSES}
    )
    def get(self, request: Request, wallet_id: str) -> Response:
        wallet = wallet_get(user=authenticated_user(request), wallet_id=wallet_id)
        return Response(WalletOutputSerializer.represent(wallet))


class WalletDepositApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(BaseInputSerializer):
        amount = AmountField()
        payment_method = TextField(
            max_length=PAYMENT_METHOD_MAX_LENGTH,
            help_text="A gateway token (e.g. tok_visa, anet_nonce:…). Card numbers are refused.",
        )
        currency = CurrencyField(required=False, help_text="If given, must be the wallet's currency.")

        class Meta:
            ref_name = "DepositInput"

    @extend_schema(
        operation_id="wallets_deposit",
        request=InputSerializer,
        responses={
            201: OpenApiResponse(
                TransactionOutputSerializer,
                description=(
                    "The deposit: `completed`, `failed` with a failure_code when declined, `pending` "
                    "while the worker retries a gateway error or reconciliation settles a lost answer, "
                    "or `in_review` when a risk rule (DEPOSIT_REVIEW_AMOUNT_THRESHOLD, velocity) holds "
                    "it: the card only authorized, nothing credited until a reviewer approves."
                ),
            ),
            **ERROR_RESPONSES,
        },
    )
    @idempotent
    def post(self, request: Request, wallet_id: str) -> Response:
        wallet = wallet_get(user=authenticated_user(request), wallet_id=wallet_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        txn = wallet_deposit(
            actor=request_actor(request),
            user=authenticated_user(request),
            wallet_id=wallet.pk,
            **serializer.validated_data,
        )
        return Response(TransactionOutputSerializer.represent(txn), status=201)


class WalletTransactionListApi(APIView):
    @extend_schema(
        operation_id="wallets_transactions_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_schema("TransactionList", TransactionOutputSerializer), **ERROR_RESPONSES},
    )
    def get(self, request: Request, wallet_id: str) -> Response:
        params = page_params(request.query_params)
        page = paginate(wallet_transactions(user=authenticated_user(request), wallet_id=wallet_id), params)
        return Response(page_body(page, TransactionOutputSerializer))


class TransferCreateApi(APIView):
    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(BaseInputSerializer):
        source_wallet = TextField(max_length=64, help_text="One of your wallets.")
        destination_wallet = TextField(max_length=64, help_text="Any active wallet.")
        amount = AmountField()
        description = TextField(max_length=500, required=False, allow_blank=True)

        class Meta:
            ref_name = "TransferInput"

    @extend_schema(
        operation_id="transfers_create",
        request=InputSerializer,
        responses={
            201: TransactionOutputSerializer,
            400: OpenApiResponse(
                description="insufficient_funds, wallet_inactive, currency_mismatch, same_wallet "
                "or an invalid parameter; nothing moved."
            ),
            401: ERROR_RESPONSES[401],
            404: ERROR_RESPONSES[404],
        },
    )
    @idempotent(atomic=True)  # pure database: claim, transfer and response in one transaction
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        txn = wallet_transfer(
            actor=request_actor(request),
            user=authenticated_user(request),
            source_wallet_id=data["source_wallet"],
            destination_wallet_id=data["destination_wallet"],
            amount=data["amount"],
            description=data.get("description") or None,
        )
        return Response(TransactionOutputSerializer.represent(txn), status=201)


class TransferBatchApi(APIView):
    """POST /transfers/batch: up to 100 transfers in one request, one transaction, one function call."""

    throttle_classes = [MoneyMovementThrottle]

    class InputSerializer(BaseInputSerializer):
        transfers = serializers.ListField(
            child=TransferCreateApi.InputSerializer(),
            min_length=1,
            max_length=BATCH_MAX_ITEMS,
            help_text="1 to 100 transfers, run in input order.",
        )
        atomic = BooleanField(
            required=False,
            default=True,
            help_text="true: all or nothing (the first refused item is the answer). "
            "false: each item on its own, refused ones answered in place.",
        )

        class Meta:
            ref_name = "TransferBatchInput"

    # `data` can't be a Serializer's field name (it is the serializer's own output): described inline.
    OUTPUT = inline_serializer(
        "TransferBatchOutput",
        {
            "data": serializers.ListField(
                child=serializers.DictField(),
                help_text='In input order: each transfer\'s transaction, or (atomic false) {"error": {...}}.',
            ),
            "failed": serializers.IntegerField(
                help_text="How many items were refused (always 0 when atomic)."
            ),
        },
    )

    @extend_schema(
        operation_id="transfers_batch_create",
        request=InputSerializer,
        responses={
            201: OUTPUT,
            400: OpenApiResponse(
                description="atomic: the first refused item's error (param `transfers[i].<field>`), "
                "nothing moved; or an invalid batch; or no Idempotency-Key."
            ),
            401: ERROR_RESPONSES[401],
            404: ERROR_RESPONSES[404],
        },
    )
    @idempotent_required(atomic=True)  # pure database: claim, batch and response in one transaction
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        results = wallet_transfer_batch(
            actor=request_actor(request),
            user=authenticated_user(request),
            transfers=[
                TransferRequest(
                    source_wallet_id=item["source_wallet"],
                    destination_wallet_id=item["destination_wallet"],
                    amount=item["amount"],
                    description=item.get("description") or None,
                )
                for item in data["transfers"]
            ],
            atomic=data["atomic"],
        )
        body = [
            result.as_envelope()
            if isinstance(result, ApplicationError)
            else TransactionOutputSerializer.represent(result)
            for result in results
        ]
        failed = sum(isinstance(result, ApplicationError) for result in results)
        return Response({"data": body, "failed": failed}, status=201)
