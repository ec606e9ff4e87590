"""Which outbox events are public, for whom, and the object each carries (docs/events.md marks them).

A *renderer* knows one resource type: how to load many of them at once (one query for a whole
batch of events), the object as this API returns it (the resource's own output serializer), and
who may see an event about it. Each public event type names its renderer; a later resource
registers its own here with `register_renderer`, before the events' consumer reads the public types.

`data.object` is the resource as it is when the event is made public (moments after the change,
by the outbox consumer), with the fields named in `snapshot` — its state: status, amounts,
failure code — taken from the event itself, so a `payment.created` delivered after the payment
already succeeded still says `pending`. Receivers order by `created_at` and the object's state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.models import prefetch_related_objects

from apps.core.crypto import EncryptedTextField
from apps.core.models import OutboxEvent
from apps.payments.models import Payment
from apps.payments.serializers import PaymentOutputSerializer
from apps.payouts.models import Payout
from apps.payouts.serializers import PayoutOutputSerializer
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


def _raw_loader(
    model: type[models.Model],
    *,
    joins: str = "",
    extra: str = "",
    related: Callable[[list[Any]], None] | None = None,
) -> Callable[[Sequence[str]], dict[str, Any]]:
    """A loader for a resource of every public event (transactions, payments): its SQL is written
    once (the model's columns but its encrypted ones, which no output serializer shows; `extra`
    columns from `joins`), so a batch costs one round trip and no query compilation; `related`
    loads what the rendering reads beyond the row, for the whole batch at once."""
    sql: list[str] = []

    def load(ids: Sequence[str]) -> dict[str, Any]:
        if not sql:
            table = model._meta.db_table
            columns = [
                f"t.{field.column}"
                for field in model._meta.concrete_fields
                if not isinstance(field, EncryptedTextField)
            ]
            sql.append(f"SELECT {', '.join(columns)}{extra} FROM {table} t {joins} WHERE t.id = ANY(%s)")  # noqa: S608  # nosec B608: table and column names of our models, values as parameters
        objects = {obj.pk: obj for obj in model._default_manager.raw(sql[0], [list(ids)])}
        if related is not None:
            related(list(objects.values()))
        return objects

    return load


def _reviews(payments: list[Any]) -> None:
    """The reviews of the payments that can have one (risk reasons), in one query, as the payment
    object shows them."""
    held = [payment for payment in payments if payment.risk_reasons]
    if held:
        prefetch_related_objects(held, "review")


register_renderer(
    "payment",
    Renderer(
        load=_raw_loader(Payment, related=_reviews),
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
        "payment.requires_capture",
        "payment.reconcile",
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
        load=_raw_loader(
            Transaction,
            joins=f"LEFT JOIN {Wallet._meta.db_table} s ON s.id = t.source_wallet_id "
            f"LEFT JOIN {Wallet._meta.db_table} d ON d.id = t.destination_wallet_id",
            extra=", s.user_id AS source_owner, d.user_id AS destination_owner",
        ),
        represent=TransactionOutputSerializer.represent,
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
        represent=WalletOutputSerializer.represent,
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


register_renderer(
    "payout",
    Renderer(
        load=_raw_loader(
            Payout,
            joins=f"JOIN {Wallet._meta.db_table} w ON w.id = t.wallet_id",
            extra=", w.user_id AS owner_id",
        ),
        represent=PayoutOutputSerializer.represent,
        recipients=lambda payout: [Recipient(payout.owner_id)],
        snapshot=("status", "failure_code"),
    ),
    event_types=["payout.created", "payout.in_transit", "payout.paid", "payout.failed", "payout.canceled"],
)
