from django.urls import path

from apps.events import apis

urlpatterns = [
    path("events", apis.EventsApi.as_view(), name="events"),
    path("events/<str:event_id>", apis.EventDetailApi.as_view(), name="event"),
    path("webhook-endpoints", apis.WebhookEndpointsApi.as_view(), name="webhook-endpoints"),
    path(
        "webhook-endpoints/<str:endpoint_id>",
        apis.WebhookEndpointDetailApi.as_view(),
        name="webhook-endpoint",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/rotate-secret",
        apis.WebhookEndpointRotateSecretApi.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/deliveries",
        apis.WebhookDeliveriesApi.as_view(),
        name="webhook-endpoint-deliveries",
    ),
    path(
        "webhook-deliveries/<str:delivery_id>",
        apis.WebhookDeliveryDetailApi.as_view(),
        name="webhook-delivery",
    ),
    path(
        "webhook-deliveries/<str:delivery_id>/retry",
        apis.WebhookDeliveryRetryApi.as_view(),
        name="webhook-delivery-retry",
    ),
]
