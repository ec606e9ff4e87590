from django.db import models
from django.utils import timezone


class ActorType(models.TextChoices):
    USER = "user", "User"
    API_KEY = "api_key", "API key"
    SYSTEM = "system", "System"


class AuditLog(models.Model):
    """One append-only, hash-chained record of who did what to which entity.

    No foreign keys: a record must outlive the user, key or payment it describes, so the actor and
    entity are kept as ids and a readable `actor_repr`. Database triggers refuse UPDATE and DELETE
    (migration 0002); `hash` chains each row to the one before it in its `chain` (`apps.audit.chain`),
    and `manage.py verify_audit_chain` proves nothing was altered or removed behind the triggers' back.
    The trail is several independent chains so that concurrent transactions don't all queue for
    one lock (see `apps.audit.services.audit_record`).
    """

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True, default="")
    actor_repr = models.CharField(max_length=254, blank=True, default="")
    action = models.CharField(max_length=64, help_text='Dotted, e.g. "auth.login", "wallet.transfer".')
    entity_type = models.CharField(max_length=64)
    entity_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, default="")
    chain = models.PositiveSmallIntegerField(default=0)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        indexes = [
            models.Index(fields=["entity_type", "entity_id"], name="audit_entity_idx"),
            models.Index(fields=["correlation_id"], name="audit_correlation_idx"),
            models.Index(fields=["actor_id"], name="audit_actor_idx"),
            models.Index(fields=["created_at"], name="audit_created_at_idx"),
            # The newest row of one chain, read on every append.
            models.Index(fields=["chain", "-id"], name="audit_chain_tip_idx"),
        ]
        constraints = [
            # A fork in a chain (two rows claiming the same predecessor) can't even be written. Each
            # chain starts from its own genesis hash, so one index covers every chain.
            models.UniqueConstraint(fields=["prev_hash"], name="audit_chain_one_successor"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.entity_type}:{self.entity_id} by {self.actor_repr or self.actor_type}"
