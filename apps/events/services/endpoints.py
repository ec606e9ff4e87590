"""Writes to a merchant's webhook endpoints: create, change, delete, rotate the secret, and disable
one whose deliveries have failed for OUTBOUND_WEBHOOK_DISABLE_AFTER_SECONDS.

Each is one transaction with its audit record and outbox event. The secret is returned by create
and rotate only (the caller shows it once); it is stored encrypted and never logged or audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.outbox import ALL_EVENTS, emit_event
from apps.events.addresses import AddressRefused, check_url, parse_url
from apps.events.errors import EventTypeUnknown, UrlInvalid
from apps.events.models import WebhookDelivery, WebhookEndpoint
from apps.events.renderers import public_event_types
from apps.events.signing import new_secret

E = WebhookEndpoint.Status
SECRET_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str


def _checked_url(url: Any) -> str:
    try:
        check_url(url)
    except AddressRefused as exc:
        raise UrlInvalid(str(exc), param="url")
    return str(url)


def _checked_event_types(enabled_events: Any) -> list[str]:
    if not isinstance(enabled_events, list) or not enabled_events:
        raise EventTypeUnknown(
            'enabled_events must list at least one event type, or be ["*"]', param="enabled_events"
        )
    known = set(public_event_types())
    types: list[str] = []
    for index, event_type in enumerate(enabled_events):
        if event_type == ALL_EVENTS and len(enabled_events) == 1:
            return [ALL_EVENTS]
        if not isinstance(event_type, str) or event_type not in known:
            raise EventTypeUnknown(
                f"enabled_events[{index}] is not an event type you can receive: {str(event_type)[:64]!r}"
                ' (see docs/events.md; ["*"] alone means all of them)',
                param=f"enabled_events[{index}]",
            )
        if event_type not in types:
            types.append(event_type)
    return types


def _snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the audit trail and the outbox say about an endpoint: never the secret, and of the URL
    only its host (a URL may hold credentials)."""
    try:
        host = parse_url(endpoint.url).host
    except AddressRefused:
        host = ""
    return {
        "endpoint": endpoint.pk,
        "owner": endpoint.user_id,
        "host": host,
        "status": endpoint.status,
        "enabled_events": endpoint.enabled_events,
    }


def _record(*, actor: Actor, endpoint: WebhookEndpoint, action: str, before: dict[str, Any] | None) -> None:
    after = _snapshot(endpoint)
    audit_record(
        actor=actor,
        action=f"webhook_endpoint.{action}",
        entity_type="webhook_endpoint",
        entity_id=endpoint.pk,
        before=before,
        after=after,
    )
    emit_event(event_type=f"webhook_endpoint.{action}", aggregate=endpoint, payload=after)


@transaction.atomic(durable=True)
def webhook_endpoint_create(
    *, actor: Actor, user: Any, url: Any, enabled_events: Any, description: str = ""
) -> EndpointWithSecret:
    secret = new_secret()
    endpoint = WebhookEndpoint(
        user=user,
        url=_checked_url(url),
        enabled_events=_checked_event_types(enabled_events),
        description=description or "",
        secret=secret,
    )
    endpoint.save()
    _record(actor=actor, endpoint=endpoint, action="created", before=None)
    return EndpointWithSecret(endpoint, secret)


@transaction.atomic(durable=True)
def webhook_endpoint_update(
    *, actor: Actor, endpoint_id: str, user: Any, changes: dict[str, Any]
) -> WebhookEndpoint:
    """PATCH: `url`, `enabled_events`, `description`, `status` ("enabled"|"disabled"). Disabling
    fails the deliveries still pending (a retry sends one again once the endpoint is enabled)."""
    from apps.events.selectors import webhook_endpoint_get

    endpoint = webhook_endpoint_get(user=user, endpoint_id=endpoint_id, for_update=True)
    before = _snapshot(endpoint)
    if "url" in changes:
        endpoint.url = _checked_url(changes["url"])
    if "enabled_events" in changes:
        endpoint.enabled_events = _checked_event_types(changes["enabled_events"])
    if "description" in changes:
        endpoint.description = changes["description"] or ""
    if "status" in changes and changes["status"] != endpoint.status:
        endpoint.status = changes["status"]
        endpoint.failing_since = None
        endpoint.disabled_reason = "disabled by its owner" if endpoint.status == E.DISABLED else ""
        if endpoint.status == E.DISABLED:
            _fail_pending(endpoint, reason="the endpoint was disabled")
    endpoint.updated_at = timezone.now()
    endpoint.save()
    _record(actor=actor, endpoint=endpoint, action="updated", before=before)
    return endpoint


@transaction.atomic(durable=True)
def webhook_endpoint_delete(*, actor: Actor, endpoint_id: str, user: Any) -> None:
    """Deletes the endpoint with its deliveries (the events stay: they are the principal's)."""
    from apps.events.selectors import webhook_endpoint_get

    endpoint = webhook_endpoint_get(user=user, endpoint_id=endpoint_id, for_update=True)
    before = _snapshot(endpoint)
    endpoint.status = E.DISABLED
    _record(actor=actor, endpoint=endpoint, action="deleted", before=before)
    endpoint.delete()


@transaction.atomic(durable=True)
def webhook_endpoint_rotate_secret(*, actor: Actor, endpoint_id: str, user: Any) -> EndpointWithSecret:
    """A new secret; the one it replaces still signs for 24 h (both `v1`s are sent), so the
    receiver can switch without missing a delivery. A second rotation within those 24 h drops the
    oldest secret at once."""
    from apps.events.selectors import webhook_endpoint_get

    endpoint = webhook_endpoint_get(user=user, endpoint_id=endpoint_id, for_update=True)
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + SECRET_OVERLAP
    endpoint.secret = secret
    endpoint.updated_at = timezone.now()
    endpoint.save()
    _record(actor=actor, endpoint=endpoint, action="secret_rotated", before=None)
    return EndpointWithSecret(endpoint, secret)


def live_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one while it lives."""
    secrets_ = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires and expires > timezone.now():
        secrets_.append(endpoint.previous_secret)
    return secrets_


def _fail_pending(endpoint: WebhookEndpoint, *, reason: str) -> None:
    WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED,
        next_attempt_at=None,
        lease_expires_at=None,
        last_error=reason,
        updated_at=timezone.now(),
    )


def webhook_endpoint_disable_failing(*, endpoint_id: str) -> bool:
    """Inside the caller's transaction (a failed attempt's): disables the endpoint if every attempt
    has failed for OUTBOUND_WEBHOOK_DISABLE_AFTER_SECONDS, with the event that emails its owner.
    Returns whether it did."""
    from django.conf import settings

    cutoff = timezone.now() - timedelta(seconds=settings.OUTBOUND_WEBHOOK_DISABLE_AFTER_SECONDS)
    endpoint = (
        WebhookEndpoint.objects.select_for_update()
        .filter(pk=endpoint_id, status=E.ENABLED, failing_since__lte=cutoff)
        .first()
    )
    if endpoint is None:
        return False
    before = _snapshot(endpoint)
    endpoint.status = E.DISABLED
    endpoint.disabled_reason = "every delivery failed for 3 days"
    endpoint.updated_at = timezone.now()
    endpoint.save(update_fields=["status", "disabled_reason", "updated_at"])
    _fail_pending(endpoint, reason="the endpoint was disabled: every delivery failed for 3 days")
    payload = {
        **_snapshot(endpoint),
        "failing_since": endpoint.failing_since.isoformat() if endpoint.failing_since else None,
        "description": endpoint.description,
    }
    audit_record(
        actor=None,
        action="webhook_endpoint.disabled",
        entity_type="webhook_endpoint",
        entity_id=endpoint.pk,
        before=before,
        after=payload,
    )
    emit_event(event_type="webhook_endpoint.disabled", aggregate=endpoint, payload=payload)
    return True
