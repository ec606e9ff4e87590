import factory
from django.db import transaction

from apps.audit.models import AuditLog
from apps.audit.services import audit_record


class AuditRecordFactory(factory.Factory):
    """Audit rows only exist through `audit_record` (it chains them), so creating one calls it."""

    class Meta:
        model = AuditLog

    actor = None
    action = "wallet.transfer"
    entity_type = "wallet"
    entity_id = factory.Sequence(lambda n: f"wal_{n:026d}")
    before = factory.Sequence(lambda n: {"balance": n * 100})
    after = factory.Sequence(lambda n: {"balance": n * 100 + 50})

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with transaction.atomic():
            return audit_record(**kwargs)
