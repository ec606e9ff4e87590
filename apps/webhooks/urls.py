from django.urls import path

from apps.webhooks import apis

urlpatterns = [
    path("webhooks/stripe", apis.StripeWebhookApi.as_view(), name="webhooks-stripe"),
    path("webhooks/authorize-net", apis.AuthorizeNetWebhookApi.as_view(), name="webhooks-authorize-net"),
]
