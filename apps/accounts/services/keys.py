"""API keys: creation (the secret shown once, stored hashed), revocation, and recording their use."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.accounts.keys import display_prefix, hash_api_key_secret, new_api_key_secret
from apps.accounts.models import ApiKey, User
from apps.accounts.session_cache import api_key_use_is_new
from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.outbox import emit_event

logger = logging.getLogger(__name__)

# last_used_at is for people ("used today?"), so one write a minute per key is plenty.
API_KEY_USE_RESOLUTION = timedelta(minutes=1)


@transaction.atomic(durable=True)
def api_key_create(*, user: User, name: str, actor: Actor) -> tuple[ApiKey, str]:
    """Returns the key and its secret. The secret exists only in this return value, never stored."""
    secret = new_api_key_secret()
    api_key = ApiKey.objects.create(
        user=user, name=name, prefix=display_prefix(secret), hashed_key=hash_api_key_secret(secret)
    )
    audit_record(
        actor=actor,
        action="api_key.created",
        entity_type="api_key",
        entity_id=api_key.id,
        after={"name": api_key.name, "user_id": user.id},
    )
    emit_event(
        event_type="api_key.created",
        aggregate=api_key,
        payload={"api_key_id": api_key.id, "user_id": user.id, "name": api_key.name},
    )
    return api_key, secret


@transaction.atomic(durable=True)
def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    """Revokes at once (the authentication cache is told on commit: apps.accounts.signals).
    Revoking twice is a no-op."""
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        return api_key
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="api_key.revoked",
        entity_type="api_key",
        entity_id=api_key.id,
        before={"revoked_at": None},
        after={"revoked_at": api_key.revoked_at.isoformat()},
    )
    emit_event(
        event_type="api_key.revoked",
        aggregate=api_key,
        payload={"api_key_id": api_key.id, "user_id": api_key.user_id},
    )
    return api_key


def api_key_record_use(*, api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < API_KEY_USE_RESOLUTION:
        return
    # The key may come from the authentication cache, its last use as old as the snapshot.
    if not api_key_use_is_new(api_key_id=api_key.pk, seconds=int(API_KEY_USE_RESOLUTION.total_seconds())):
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
