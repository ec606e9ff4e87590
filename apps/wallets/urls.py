from django.urls import path

from apps.wallets.apis import (
    TransferBatchApi,
    TransferCreateApi,
    WalletDepositApi,
    WalletDetailApi,
    WalletsApi,
    WalletTransactionListApi,
)

urlpatterns = [
    path("wallets", WalletsApi.as_view(), name="wallets"),
    path("wallets/<str:wallet_id>", WalletDetailApi.as_view(), name="wallet-detail"),
    path("wallets/<str:wallet_id>/deposits", WalletDepositApi.as_view(), name="wallet-deposits"),
    path(
        "wallets/<str:wallet_id>/transactions", WalletTransactionListApi.as_view(), name="wallet-transactions"
    ),
    path("transfers", TransferCreateApi.as_view(), name="transfers"),
    path("transfers/batch", TransferBatchApi.as_view(), name="transfers-batch"),
]
