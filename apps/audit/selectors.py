from django.db.models import QuerySet

from apps.audit.models import AuditLog


def audit_trail_for(*, entity_type: str, entity_id: str) -> QuerySet[AuditLog]:
    """What happened to one entity, oldest first (the review screen shows a payment's trail)."""
    return AuditLog.objects.filter(entity_type=entity_type, entity_id=entity_id).order_by("id")
