"""Who hears about what: the outbox events that send email, and to whom.

One consumer ("notifications") runs once per event (apps.core.outbox), given the events of a
delivery together, turns each into messages with the builder registered for its type, and hands
them all to `notifications_create_many` (one INSERT, one send task). The people a batch concerns
are read once for all its events (`people_of`: two queries, whatever the batch's size); a builder
then only picks the recipients among them (a transfer tells both parties) and the few values the
templates need, formatted for people. Payment emails go to the payment's owner (the API user who
made it). Subscription payments get their payment email like any other (it is the receipt) and
the subscription's own email on top (it is about the plan: renewed, failed, canceled).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
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
Builder = Callable[[OutboxEvent, "People"], list[Message]]
_builders: dict[str, Builder] = {}


def builds(*event_types: str) -> Callable[[Builder], Builder]:
    def register(func: Builder) -> Builder:
        for event_type in event_types:
            _builders[event_type] = func
        return func

    return register


@dataclass(frozen=True)
class People:
    """Whom a delivery's events concern, read once for the whole batch (two queries, not two per
    event): users by id, and each wallet's owner."""

    users: dict[str, User]
    owners: dict[str, User]

    def user(self, user_id: Any) -> User | None:
        return self.users.get(str(user_id)) if user_id else None


# Where the notifying events' payloads name the people they concern (docs/events.md).
USER_KEYS = ("user_id", "owner", "user")
WALLET_KEYS = ("source_wallet", "destination_wallet", "wallet")


def people_of(events: list[OutboxEvent]) -> People:
    user_ids: set[str] = set()
    wallet_ids: set[str] = set()
    for event in events:
        payload = event.payload
        user_ids.update(str(payload[key]) for key in USER_KEYS if payload.get(key))
        items = payload.get("transfers") or []
        user_ids.update(
            str(i["destination_user"]) for i in items if isinstance(i, dict) and i.get("destination_user")
        )
        wallet_ids.update(str(payload[key]) for key in WALLET_KEYS if payload.get(key))
    return People(
        users=selectors.users_by_id(user_ids) if user_ids else {},
        owners=selectors.wallet_owners(wallet_ids) if wallet_ids else {},
    )


def _money(amount: Any, currency: Any) -> str:
    try:
        return str(Money(int(amount), str(currency)))
    except (TypeError, ValueError):
        return f"{amount} {currency}"


def _display_name(user: User | None, wallet_id: str) -> str:
    # Never the other party's email address: their name, or the wallet they used.
    return (user.full_name if user else "") or f"wallet {wallet_id}"


@builds("user.registered")
def _welcome(event: OutboxEvent, people: People) -> list[Message]:
    user = people.user(event.payload.get("user_id"))
    return [Message(user=user, template=T.WELCOME)] if user else []


@builds("transaction.completed", "transaction.failed")
def _wallet_transaction(event: OutboxEvent, people: People) -> list[Message]:
    payload = event.payload
    source, destination = payload.get("source_wallet"), payload.get("destination_wallet")
    owners = people.owners
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
def _transfer_batch(event: OutboxEvent, people: People) -> list[Message]:
    """One email to the sender and one to each receiving user, however many items they share."""
    payload = event.payload
    items = [item for item in payload.get("transfers") or [] if isinstance(item, dict)]
    sender = people.user(payload.get("user"))
    by_receiver: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_receiver.setdefault(str(item.get("destination_user")), []).append(item)
    receivers = {user_id: user for user_id in by_receiver if (user := people.user(user_id))}
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
def _payment(event: OutboxEvent, people: People) -> list[Message]:
    payload = event.payload
    owner = people.user(payload.get("owner"))
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


_PAYOUT_TEMPLATES = {"payout.paid": T.PAYOUT_PAID, "payout.failed": T.PAYOUT_FAILED}


@builds(*_PAYOUT_TEMPLATES)
def _payout(event: OutboxEvent, people: People) -> list[Message]:
    """To the wallet's owner: the money reached the bank, or it came back into the wallet."""
    payload = event.payload
    owner = people.owners.get(str(payload.get("wallet")))
    if owner is None:
        return []
    context = {
        "payout": payload.get("payout") or event.aggregate_id,
        "wallet": payload.get("wallet"),
        "amount": _money(payload.get("amount"), payload.get("currency")),
        "failure_code": payload.get("failure_code") or "",
    }
    return [Message(user=owner, template=_PAYOUT_TEMPLATES[event.event_type], context=context)]


# `subscription.past_due` and `subscription.unpaid` come with a `subscription.payment_failed` of
# the same attempt, whose email already says whether more retries will follow: no second email.
_SUBSCRIPTION_TEMPLATES = {
    "subscription.renewed": T.SUBSCRIPTION_RENEWED,
    "subscription.payment_failed": T.SUBSCRIPTION_PAYMENT_FAILED,
    "subscription.canceled": T.SUBSCRIPTION_CANCELED,
}


@builds(*_SUBSCRIPTION_TEMPLATES)
def _subscription(event: OutboxEvent, people: People) -> list[Message]:
    payload = event.payload
    owner = people.user(payload.get("owner"))
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


@builds("webhook_endpoint.disabled")
def _webhook_endpoint_disabled(event: OutboxEvent, people: People) -> list[Message]:
    """apps.events disabled an endpoint whose deliveries all failed for 3 days: its owner is told."""
    payload = event.payload
    owner = people.user(payload.get("owner"))
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
    people = people_of(events)
    notifications_create_many(batch=[(event, _builders[event.event_type](event, people)) for event in events])


def notify(event: OutboxEvent) -> None:
    notify_all([event])
