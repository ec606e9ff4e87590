from django.urls import path

from apps.subscriptions import apis

urlpatterns = [
    path("subscriptions", apis.SubscriptionListCreateApi.as_view(), name="subscriptions"),
    path("subscriptions/<str:subscription_id>", apis.SubscriptionDetailApi.as_view(), name="subscription"),
]
