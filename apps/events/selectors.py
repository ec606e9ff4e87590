"""Reads of events, endpoints and deliveries, scoped to their principal (another's is a 404,
exactly like a missing one); and, for staff (the dashboard, the metrics), delivery figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Prefetch, Q, QuerySet
from django.utils import timezone

from apps.core.errors import InvalidRequest
from apps.core.ids import has_prefix
from apps.core.timestamps import parse_instant
from apps.events.errors import EventNotFound, WebhookDeliveryNotFound, WebhookEndpointNotFound
from apps.events.models import DeliveryAttempt, Event, WebhookDelivery, WebhookEndpoint
from apps.events.renderers import public_event_types

D = WebhookDelivery.Status


def _short(value: Any) -> str:
    return str(value)[:64]


def event_list(*, user: Any, filters: dict[str, Any]) -> QuerySet[Event]:
    """The principal's events (newest first through apps.core.pagination); filters `type`,
    `created_gte`, `created_lt`."""
    queryset = Event.objects.filter(user=user)
    event_type = filters.get("type")
    if event_type:
        if event_type not in public_event_types():
            raise InvalidRequest(f"type is not an event type: {_short(event_type)!r}", param="type")
        queryset = queryset.filter(type=event_type)
    for name, lookup in (("created_gte", "created_at__gte"), ("created_lt", "created_at__lt")):
        if filters.get(name):
            queryset = queryset.filter(**{lookup: parse_instant(name, filters[name])})
    return queryset


def event_get(*, user: Any, event_id: str) -> Event:
    event = Event.objects.filter(pk=event_id, user=user).first() if has_prefix(event_id, "evt") else None
    if event is None:
        raise EventNotFound(f"No such event: '{_short(event_id)}'")
    return event


def webhook_endpoint_list(*, user: Any) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(user=user)


def webhook_endpoint_get(*, user: Any, endpoint_id: str, for_update: bool = False) -> WebhookEndpoint:
    queryset = WebhookEndpoint.objects.filter(user=user)
    if for_update:
        queryset = queryset.select_for_update()
    endpoint = queryset.filter(pk=endpoint_id).first() if has_prefix(endpoint_id, "we") else None
    if endpoint is None:
        raise WebhookEndpointNotFound(f"No such webhook endpoint: '{_short(endpoint_id)}'")
    return endpoint


def _with_attempts(queryset: QuerySet[WebhookDelivery]) -> QuerySet[WebhookDelivery]:
    return (
        queryset.select_related("event")
        .defer("event__data")
        .prefetch_related(Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("number")))
    )


def webhook_delivery_list(
    *, user: Any, endpoint_id: str, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    endpoint = webhook_endpoint_get(user=user, endpoint_id=endpoint_id)
    queryset = WebhookDelivery.objects.filter(endpoint=endpoint)
    if status:
        if status not in D.values:
            raise InvalidRequest(f"status must be one of: {', '.join(D.values)}", param="status")
        queryset = queryset.filter(status=status)
    return _with_attempts(queryset)


def webhook_delivery_get(*, user: Any, delivery_id: str) -> WebhookDelivery:
    delivery = None
    if has_prefix(delivery_id, "wd"):
        delivery = _with_attempts(WebhookDelivery.objects.filter(pk=delivery_id, endpoint__user=user)).first()
    if delivery is None:
        raise WebhookDeliveryNotFound(f"No such webhook delivery: '{_short(delivery_id)}'")
    return delivery


def deliveries_due(*, now: datetime, first_send_grace: timedelta, limit: int) -> list[str]:
    """Pending deliveries whose time has come and that nobody holds: retries when due, first sends
    only once their own task had `first_send_grace` to run (it was lost with the broker)."""
    due = Q(attempts__gt=0) | Q(created_at__lte=now - first_send_grace)
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
    return list(
        WebhookDelivery.objects.filter(due, free, status=D.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


@dataclass(frozen=True)
class DeliveryFigures:
    """Outbound webhooks at a glance (the dashboard): the last `days` days' deliveries by status,
    and what waits now."""

    succeeded: int
    failed: int
    pending: int
    overdue: int  # pending and due, not yet attempted: the workers' backlog
    oldest_pending: datetime | None
    endpoints_disabled: int

    @property
    def success_rate_percent(self) -> float | None:
        done = self.succeeded + self.failed
        return round(100 * self.succeeded / done, 1) if done else None


def delivery_figures(*, since: datetime) -> DeliveryFigures:
    now = timezone.now()
    counts = WebhookDelivery.objects.filter(created_at__gte=since).aggregate(
        succeeded=Count("pk", filter=Q(status=D.SUCCEEDED)), failed=Count("pk", filter=Q(status=D.FAILED))
    )
    waiting = delivery_backlog(now=now)
    return DeliveryFigures(
        succeeded=counts["succeeded"],
        failed=counts["failed"],
        pending=waiting["pending"],
        overdue=waiting["overdue"],
        oldest_pending=waiting["oldest"],
        endpoints_disabled=WebhookEndpoint.objects.filter(status=WebhookEndpoint.Status.DISABLED).count(),
    )


def delivery_backlog(*, now: datetime) -> dict[str, Any]:
    """Pending deliveries, those of them due now, the oldest pending one's creation and the
    earliest due time among the due ones (one query over the pending index)."""
    return WebhookDelivery.objects.filter(status=D.PENDING).aggregate(
        pending=Count("pk"),
        overdue=Count("pk", filter=Q(next_attempt_at__lte=now)),
        oldest=Min("created_at"),
        earliest_due=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now)),
    )
