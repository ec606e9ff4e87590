"""Who hears about what: the outbox events that send email, and to whom.

One consumer ("notifications") runs once per event (apps.core.outbox), given the events of a
delivery together, turns each into messages with the builder registered for its type, and hands
them all to `notifications_create_many` (one INSERT, one send task). A builder only
reads: it resolves the recipients (a transfer tells both parties) and the few values the
templates need, formatted for people. Payment emails go to the payment's owner (the API user who
made it). Subscription payments get their payment email like any other (it is the receipt) and
the subscription's own email on top (it is about the plan: renewed, failed, canceled).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from apps.accounts.models import User
from apps.core.models import OutboxEvent
from apps.core.money import Money
from apps.core.outbox import batch_consumer
from apps.notifications import selectors
from apps.notifications.models import Notification
from apps.notifications.services import Message, notifications_create_many

logger = logging.getLogger(__name__)

T = Notification.Template
Builder = Callable[[OutboxEvent], list[Message]]
_builders: dict[str, Builder] = {}


def builds(*event_types: str) -> Callable[[Builder], Builder]:
    def register(func: Builder) -> Builder:
        for event_type in event_types:
            _builders[event_type] = func
        return func

    return register


def _money(amount: Any, currency: Any) -> str:
    try:
        return str(Money(int(amount), str(currency)))
    except (TypeError, ValueError):
        return f"{amount} {currency}"


def _display_name(user: User | None, wallet_id: str) -> str:
    # Never the other party's email address: their name, or the wallet they used.
    return (user.full_name if user else "") or f"wallet {wallet_id}"


@builds("user.registered")
def _welcome(event: OutboxEvent) -> list[Message]:
    user = selectors.users_by_id([event.payload.get("user_id")]).get(event.payload.get("user_id"))
    return [Message(user=user, template=T.WELCOME)] if user else []


@builds("transaction.completed", "transaction.failed")
def _wallet_transaction(event: OutboxEvent) -> list[Message]:
    payload = event.payload
    source, destination = payload.get("source_wallet"), payload.get("destination_wallet")
    owners = selectors.wallet_owners([source, destination])
    context = {
        "transaction": payload.get("transaction"),
        "amount": _money(payload.get("amount"), payload.get("currency")),
    }
    completed = event.event_type == "transaction.completed"
    if payload.get("type") == "deposit" and destination in owners:
        template = T.DEPOSIT_COMPLETED if completed else T.DEPOSIT_FAILED
        context |= {"wallet": destination, "failure_code": payload.get("failure_code") or ""}
        return [Message(user=owners[destination], template=template, context=context)]
    if payload.get("type") == "transfer" and completed and not payload.get("batch"):
        # (a batch's transfers are told together: `_transfer_batch`)
        sender, receiver = owners.get(source), owners.get(destination)
        messages = []
        if sender:
            messages.append(
                Message(
                    user=sender,
                    template=T.TRANSFER_SENT,
                    context={
                        **context,
                        "wallet": source,
                        "counterparty": _display_name(receiver, destination),
                    },
                )
            )
        if receiver:
            messages.append(
                Message(
                    user=receiver,
                    template=T.TRANSFER_RECEIVED,
                    context={**context, "wallet": destination, "counterparty": _display_name(sender, source)},
                )
            )
        return messages
    return []


@builds("transfer_batch.completed")
def _transfer_batch(event: OutboxEvent) -> list[Message]:
    """One email to the sender and one to each receiving user, however many items they share."""
    payload = event.payload
    items = [item for item in payload.get("transfers") or [] if isinstance(item, dict)]
    sender = selectors.users_by_id([payload.get("user")]).get(payload.get("user"))
    by_receiver: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_receiver.setdefault(str(item.get("destination_user")), []).append(item)
    receivers = selectors.users_by_id(list(by_receiver))
    common = {"batch": payload.get("batch")}
    messages = []
    if sender and items:
        names = {user_id: _display_name(user, "") for user_id, user in receivers.items()}
        lines = [
            f"{_money(item.get('amount'), item.get('currency'))} to "
            f"{names.get(str(item.get('destination_user'))) or 'wallet ' + str(item.get('destination_wallet'))}"
            f" ({item.get('transaction')})"
            for item in items
        ]
        context = {**common, "count": len(items), "total": _totals(items), "lines": lines}
        messages.append(
            Message(
                user=sender,
                template=T.TRANSFER_BATCH_SENT,
                context={**context, "failed": payload.get("failed") or 0},
            )
        )
    for user_id, received in by_receiver.items():
        receiver = receivers.get(user_id)
        if receiver is None:
            continue
        lines = [
            f"{_money(item.get('amount'), item.get('currency'))} into your wallet "
            f"{item.get('destination_wallet')} ({item.get('transaction')})"
            for item in received
        ]
        context = {**common, "count": len(received), "total": _totals(received), "lines": lines}
        messages.append(
            Message(
                user=receiver,
                template=T.TRANSFER_BATCH_RECEIVED,
                context={**context, "counterparty": _display_name(sender, "a Paydesk user")},
            )
        )
    return messages


def _totals(items: list[dict[str, Any]]) -> str:
    """ "12.50 USD" or, across currencies, "12.50 USD and 3.00 EUR"."""
    sums: dict[str, int] = {}
    for item in items:
        currency = str(item.get("currency"))
        sums[currency] = sums.get(currency, 0) + int(item.get("amount") or 0)
    return " and ".join(_money(amount, currency) for currency, amount in sums.items())


_PAYMENT_TEMPLATES = {
    "payment.succeeded": T.PAYMENT_SUCCEEDED,
    "payment.failed": T.PAYMENT_FAILED,
    "payment.refunded": T.PAYMENT_REFUNDED,
    "payment.review_decided": T.REVIEW_DECIDED,
}


@builds(*_PAYMENT_TEMPLATES)
def _payment(event: OutboxEvent) -> list[Message]:
    payload = event.payload
    owner = selectors.users_by_id([payload.get("owner")]).get(payload.get("owner"))
    if owner is None:
        return []
    currency = payload.get("currency")
    context = {
        "payment": payload.get("payment"),
        "amount": _money(payload.get("amount"), currency),
        "amount_captured": _money(payload.get("amount_captured"), currency),
        "failure_code": payload.get("failure_code") or "",
        "subscription": payload.get("subscription") or "",
    }
    if event.event_type == "payment.refunded":
        context |= {
            "refund": payload.get("refund"),
            "refund_amount": _money(payload.get("refund_amount"), currency),
            "amount_refunded": _money(payload.get("amount_refunded"), currency),
            "fully_refunded": payload.get("status") == "refunded",
        }
    if event.event_type == "payment.review_decided":
        context["decision"] = payload.get("decision")
    return [Message(user=owner, template=_PAYMENT_TEMPLATES[event.event_type], context=context)]


# `subscription.past_due` and `subscription.unpaid` come with a `subscription.payment_failed` of
# the same attempt, whose email already says whether more retries will follow: no second email.
_SUBSCRIPTION_TEMPLATES = {
    "subscription.renewed": T.SUBSCRIPTION_RENEWED,
    "subscription.payment_failed": T.SUBSCRIPTION_PAYMENT_FAILED,
    "subscription.canceled": T.SUBSCRIPTION_CANCELED,
}


@builds(*_SUBSCRIPTION_TEMPLATES)
def _subscription(event: OutboxEvent) -> list[Message]:
    payload = event.payload
    owner = _subscription_owner(event)
    if owner is None:
        logger.error("%s %s: no owner to notify (payload has no 'owner')", event.event_type, event.pk)
        return []
    context = {
        "subscription": payload.get("subscription") or event.aggregate_id,
        "plan_id": payload.get("plan_id") or "",
        "amount": _money(payload.get("amount"), payload.get("currency")),
        "payment": payload.get("payment") or "",
        "failure_code": payload.get("failure_code") or "",
        "period_end": payload.get("period_end") or "",
        "next_billing_date": payload.get("next_billing_date") or "",
        "final": payload.get("attempts_left") == 0,
        "reason": payload.get("reason") or "",
    }
    return [Message(user=owner, template=_SUBSCRIPTION_TEMPLATES[event.event_type], context=context)]


def _subscription_owner(event: OutboxEvent) -> User | None:
    owner_id = event.payload.get("owner")
    return selectors.users_by_id([owner_id]).get(owner_id) if owner_id else None


@builds("webhook_endpoint.disabled")
def _webhook_endpoint_disabled(event: OutboxEvent) -> list[Message]:
    """apps.events disabled an endpoint whose deliveries all failed for 3 days: its owner is told."""
    payload = event.payload
    owner = selectors.users_by_id([payload.get("owner")]).get(payload.get("owner"))
    if owner is None:
        return []
    context = {
        "endpoint": payload.get("endpoint") or event.aggregate_id,
        "host": payload.get("host") or "",
        "description": payload.get("description") or "",
        "failing_since": payload.get("failing_since") or "",
    }
    return [Message(user=owner, template=T.WEBHOOK_ENDPOINT_DISABLED, context=context)]


NOTIFYING_EVENTS = tuple(_builders)


@batch_consumer(*NOTIFYING_EVENTS, name="notifications")
def notify_all(events: list[OutboxEvent]) -> None:
    """The emails of a delivery's events, written together and sent by one task."""
    notifications_create_many(batch=[(event, _builders[event.event_type](event)) for event in events])


def notify(event: OutboxEvent) -> None:
    notify_all([event])
