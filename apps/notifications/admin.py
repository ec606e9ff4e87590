"""Notifications in the back office: read-only history; a failed one is replayed from its dead letter."""

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "template", "user", "status", "attempts", "created_at", "sent_at")
    list_filter = ("status", "template")
    search_fields = ("id", "user__email", "event__id", "correlation_id")
    list_select_related = ("user",)
    ordering = ("-created_at",)
    exclude = ("to",)  # the address is shown decrypted by `recipient` below, never edited
    readonly_fields = ("recipient",)

    @admin.display(description="to")
    def recipient(self, obj: Notification) -> str:
        return obj.to
