from django.contrib import admin

from apps.audit.chain import CHAINED_FIELDS
from apps.audit.models import AuditLog
from apps.core.admin import ReadOnlyAdmin


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """The audit trail for staff: searchable, filterable, and impossible to edit from here."""

    list_display = ("created_at", "actor", "action", "entity", "correlation_id")
    list_filter = ("action", "actor_type")
    # Exact matches, so the indexes answer even on a large table.
    search_fields = ("=entity_id", "=correlation_id", "=actor_id")
    search_help_text = "Exact entity id, correlation id or actor id."
    ordering = ("-id",)
    # Counting a large append-only table on every page view costs more than it tells.
    show_full_result_count = False
    # Everything the hash covers, so staff can check a row by hand, then the row's place in its chain.
    fields = ("id", *CHAINED_FIELDS, "chain", "hash")
    readonly_fields = fields

    @admin.display(description="actor", ordering="actor_repr")
    def actor(self, obj: AuditLog) -> str:
        return f"{obj.actor_repr} ({obj.get_actor_type_display()})"

    @admin.display(description="entity", ordering="entity_type")
    def entity(self, obj: AuditLog) -> str:
        return f"{obj.entity_type} {obj.entity_id}"
