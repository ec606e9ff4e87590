"""Row locks on subscriptions: every write to one holds its row `FOR UPDATE` for its transaction.

Only subscription rows are locked (`of=("self",)`): the joined owner is read, not locked. A
billing pass takes its batch with `SKIP LOCKED` instead of waiting, so concurrent passes take
disjoint batches (see `apps.subscriptions.services.billing`).
"""

from __future__ import annotations

from datetime import datetime

from apps.accounts.models import User
from apps.subscriptions.errors import SubscriptionNotFound
from apps.subscriptions.models import Subscription
from apps.subscriptions.selectors import subscriptions_due


def lock_subscription(subscription_id: str, *, owner: User | None = None) -> Subscription:
    """Locks the subscription (the owner's own, when `owner` is given); a 404 if there is none."""
    queryset = Subscription.objects.select_for_update(of=("self",)).select_related("owner")
    if owner is not None:
        queryset = queryset.filter(owner=owner)
    subscription = queryset.filter(pk=subscription_id).first()
    if subscription is None:
        raise SubscriptionNotFound(f"No such subscription: '{str(subscription_id)[:64]}'")
    return subscription


def lock_due_subscription_ids(*, now: datetime, limit: int) -> list[str]:
    """Locks up to `limit` subscriptions due at `now`, oldest due first, skipping rows another
    transaction holds (`FOR UPDATE SKIP LOCKED`, evaluated at once); returns their ids."""
    return list(
        subscriptions_due(now=now)
        .select_for_update(skip_locked=True)
        .order_by("due_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
