"""Reads of webhook events. They belong to no customer: only staff (admin) and operators (commands) read them."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.webhooks.models import WebhookEvent


def webhook_events_matching(*, reference: str = "", status: str = "") -> QuerySet[WebhookEvent]:
    """Events by our id or the provider's event id (`evt_…`, a notificationId), and/or by status."""
    queryset = WebhookEvent.objects.select_related("payment").order_by("received_at", "pk")
    if reference:
        queryset = queryset.filter(Q(pk=reference) | Q(provider_event_id=reference))
    if status:
        queryset = queryset.filter(status=status)
    return queryset
