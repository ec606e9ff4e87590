"""Which outbox events are public, for whom, and the object each carries (docs/events.md marks them).

A *renderer* knows one resource type: how to load many of them at once (one query for a whole
batch of events), the object as this API returns it (the resource's own output serializer), and
who may see an event about it. Each public event type names its renderer; a later resource
(payouts) registers its own with `register_renderer` from its app's `ready()`.

`data.object` is the resource as it is when the event is made public (moments after the change,
by the outbox consumer), with the fields named in `snapshot` — its state: status, amounts,
failure code — taken from the event itself, so a `payment.created` delivered after the payment
already succeeded still says `pending`. Receivers order by `created_at` and the object's state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F

from apps.core.models import OutboxEvent
from apps.payments.models import Payment
from apps.payments.serializers import PaymentOutputSerializer
from apps.subscriptions.models import Subscription
from apps.subscriptions.serializers import SubscriptionOutputSerializer
from apps.wallets.models import Transaction, Wallet
from apps.wallets.serializers import TransactionOutputSerializer, WalletOutputSerializer


@dataclass(frozen=True)
class Recipient:
    """Who sees an event, and whether the request behind it was theirs (a transfer's receiver did
    not make it: their event carries no `request` details of the sender's)."""

    user_id: str
    own_request: bool = True


@dataclass(frozen=True)
class Renderer:
    load: Callable[[Sequence[str]], dict[str, Any]]  # object ids -> objects, in one query
    represent: Callable[[Any], dict[str, Any]]  # the object as the API returns it
    recipients: Callable[[Any], list[Recipient]]
    object_id: Callable[[OutboxEvent], str | None] = lambda event: event.aggregate_id
    snapshot: tuple[str, ...] = ("status",)


_renderers: dict[str, Renderer] = {}
_public: dict[str, str] = {}  # event type -> renderer name


def register_renderer(name: str, renderer: Renderer, *, event_types: Iterable[str]) -> None:
    """Makes `event_types` public, rendered by `renderer` (registering again replaces it)."""
    _renderers[name] = renderer
    for event_type in event_types:
        _public[event_type] = name


def public_event_types() -> list[str]:
    return sorted(_public)


def renderer_for(event_type: str) -> tuple[str, Renderer] | None:
    name = _public.get(event_type)
    return (name, _renderers[name]) if name else None


def represent(renderer: Renderer, obj: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """The object, its state as of the event (see the module docstring)."""
    body = renderer.represent(obj)
    for field in renderer.snapshot:
        if field in payload and field in body:
            body[field] = payload[field] if payload[field] != "" else None
    return body


# --- the resources of this API ---------------------------------------------------------------------


def _by_pk(queryset: Any, ids: Sequence[str]) -> dict[str, Any]:
    return {obj.pk: obj for obj in queryset.filter(pk__in=list(ids))}


register_renderer(
    "payment",
    Renderer(
        load=lambda ids: _by_pk(Payment.objects.select_related("review"), ids),
        represent=PaymentOutputSerializer.represent,
        recipients=lambda payment: [Recipient(payment.owner_id)],
        snapshot=("status", "amount_captured", "amount_refunded", "failure_code"),
    ),
    event_types=[
        "payment.created",
        "payment.succeeded",
        "payment.failed",
        "payment.canceled",
        "payment.refunded",
        "payment.review_opened",
        "payment.review_decided",
        "payment.dispute_opened",
    ],
)


def _transaction_recipients(txn: Any) -> list[Recipient]:
    """A deposit: its wallet's owner. A transfer: the sender (whose request it was) and the
    receiver, each with an event of their own."""
    if txn.type == Transaction.Type.DEPOSIT:
        return [Recipient(txn.destination_owner)] if txn.destination_owner else []
    recipients = [Recipient(txn.source_owner)] if txn.source_owner else []
    if txn.destination_owner and txn.destination_owner != txn.source_owner:
        recipients.append(Recipient(txn.destination_owner, own_request=False))
    return recipients


register_renderer(
    "transaction",
    Renderer(
        load=lambda ids: _by_pk(
            Transaction.objects.annotate(
                source_owner=F("source_wallet__user_id"), destination_owner=F("destination_wallet__user_id")
            ),
            ids,
        ),
        represent=lambda txn: dict(TransactionOutputSerializer(txn).data),
        recipients=_transaction_recipients,
        snapshot=("status", "failure_code"),
    ),
    event_types=[
        "transaction.completed",
        "transaction.failed",
        "transaction.in_review",
        "transaction.review_decided",
    ],
)

register_renderer(
    "wallet",
    Renderer(
        load=lambda ids: _by_pk(Wallet.objects.all(), ids),
        represent=lambda wallet: dict(WalletOutputSerializer(wallet).data),
        recipients=lambda wallet: [Recipient(wallet.user_id)],
    ),
    event_types=["wallet.created", "wallet.frozen", "wallet.unfrozen"],
)


def _subscription(subscription: Any) -> dict[str, Any]:
    """The subscription object without its payment method: a token is encrypted at rest and is
    never copied into an event (stored for 30 days, sent to URLs)."""
    body = SubscriptionOutputSerializer.represent(subscription)
    body["payment_method"] = None
    if body.get("pending_update"):
        body["pending_update"].pop("payment_method", None)
    return body


register_renderer(
    "subscription",
    Renderer(
        load=lambda ids: _by_pk(Subscription.objects.all(), ids),
        represent=_subscription,
        recipients=lambda subscription: [Recipient(subscription.owner_id)],
    ),
    event_types=[
        "subscription.created",
        "subscription.updated",
        "subscription.renewed",
        "subscription.payment_failed",
        "subscription.past_due",
        "subscription.unpaid",
        "subscription.canceled",
    ],
)
