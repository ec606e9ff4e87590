"""Outbound webhooks for staff: endpoints (never their secrets), deliveries with every attempt, and
a retry action; events are read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin import ReadOnlyAdmin, ReadOnlyMixin
from apps.core.errors import ApplicationError
from apps.events.models import DeliveryAttempt, Event, WebhookDelivery, WebhookEndpoint
from apps.events.services import webhook_delivery_retry


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "user", "created_at", "request_correlation_id")
    list_filter = ("type",)
    search_fields = ("=id", "=user__id", "=source_event_id", "=request_correlation_id")
    search_help_text = "Exact event id, user id, outbox event id or correlation id."
    ordering = ("-created_at",)
    show_full_result_count = False
    list_select_related = ("user",)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "url", "status", "failing_since", "created_at")
    list_filter = ("status",)
    search_fields = ("=id", "=user__id", "user__email")
    ordering = ("-created_at",)
    list_select_related = ("user",)
    exclude = ("secret", "previous_secret")  # never shown, even to staff


class DeliveryAttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "status_code", "latency_ms", "succeeded", "error")
    readonly_fields = fields
    ordering = ("number",)
    extra = 0


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "event", "endpoint", "status", "attempts", "last_status_code", "next_attempt_at")
    list_filter = ("status",)
    search_fields = ("=id", "=event__id", "=endpoint__id")
    search_help_text = "Exact delivery, event or endpoint id."
    ordering = ("-created_at",)
    show_full_result_count = False
    list_select_related = ("event", "endpoint")
    inlines = [DeliveryAttemptInline]
    actions = ["retry"]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("events.change_webhookdelivery")

    @admin.action(description="Retry selected deliveries now", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        done = 0
        for delivery_id, owner in queryset.values_list("pk", "endpoint__user"):
            try:
                webhook_delivery_retry(actor=request.user, user=owner, delivery_id=delivery_id)
            except ApplicationError as exc:
                self.message_user(request, f"{delivery_id}: {exc.message}", messages.WARNING)
                continue
            done += 1
        if done:
            self.message_user(
                request, f"{done} deliver{'y' if done == 1 else 'ies'} queued for a new attempt."
            )
