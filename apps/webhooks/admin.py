"""Webhook events for staff: what each provider sent, what processing did, and replay."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest

from apps.core.admin import ReadOnlyAdmin
from apps.core.errors import ApplicationError
from apps.webhooks.models import WebhookEvent
from apps.webhooks.services import webhook_event_replay


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = (
        "received_at",
        "provider",
        "type",
        "provider_event_id",
        "status",
        "attempts",
        "payment_id",
    )
    list_filter = ("status", "provider", "type")
    search_fields = ("=id", "=provider_event_id", "=payment__id", "=correlation_id")
    search_help_text = "Exact id, provider event id (evt_…), payment id or correlation id."
    ordering = ("-received_at",)
    show_full_result_count = False
    fields = (
        "id",
        "provider",
        "provider_event_id",
        "type",
        "status",
        "outcome",
        "attempts",
        "last_error",
        "payment",
        "provider_created_at",
        "received_at",
        "processed_at",
        "next_attempt_at",
        "correlation_id",
        "payload",
    )
    readonly_fields = fields
    actions = ["replay"]

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.replay_webhookevent")

    @admin.action(description="Replay selected events (failed, dead or ignored)", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset) -> None:
        for event_id in queryset.values_list("pk", flat=True):
            try:
                event = webhook_event_replay(actor=request.user, event_id=event_id)
            except ApplicationError as exc:
                self.message_user(request, f"{event_id}: {exc.message}", messages.WARNING)
                continue
            level = (
                messages.SUCCESS
                if event.status in (event.Status.PROCESSED, event.Status.IGNORED)
                else messages.ERROR
            )
            detail = event.outcome if level == messages.SUCCESS else event.last_error
            self.message_user(request, f"{event_id}: {event.status} — {detail}", level)
