from django.urls import path

from apps.payments import apis

urlpatterns = [
    path("payments", apis.PaymentListCreateApi.as_view(), name="payments"),
    path("payments/<str:payment_id>", apis.PaymentDetailApi.as_view(), name="payment"),
    path("payments/<str:payment_id>/capture", apis.PaymentCaptureApi.as_view(), name="payment-capture"),
    path("payments/<str:payment_id>/cancel", apis.PaymentCancelApi.as_view(), name="payment-cancel"),
    path("payments/<str:payment_id>/refunds", apis.PaymentRefundCreateApi.as_view(), name="payment-refunds"),
    path("payments/<str:payment_id>/review", apis.PaymentReviewApi.as_view(), name="payment-review"),
    path("transactions/<str:transaction_id>/review", apis.DepositReviewApi.as_view(), name="deposit-review"),
]
