"""Notifications in the back office: read-only history; a failed one is replayed from its dead letter."""

from django.contrib import admin

from apps.notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
