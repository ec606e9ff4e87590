from django.urls import path

from apps.payouts.apis import PayoutCancelApi, PayoutDetailApi, WalletPayoutsApi

urlpatterns = [
    path("wallets/<str:wallet_id>/payouts", WalletPayoutsApi.as_view(), name="wallet-payouts"),
    path("payouts/<str:payout_id>", PayoutDetailApi.as_view(), name="payout-detail"),
    path("payouts/<str:payout_id>/cancel", PayoutCancelApi.as_view(), name="payout-cancel"),
]
