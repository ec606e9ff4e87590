"""Reads for notifications: a user's own history, and who an event concerns."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.core.errors import InvalidRequest
from apps.core.ids import has_prefix
from apps.notifications.errors import NotificationNotFound
from apps.notifications.models import Notification
from apps.wallets.models import Wallet


def notification_list(
    *, user: User, status: str | None = None, template: str | None = None
) -> QuerySet[Notification]:
    """The user's notifications (for `apps.core.pagination`, which orders them newest first)."""
    queryset = Notification.objects.filter(user=user)
    if status:
        if status not in Notification.Status.values:
            raise InvalidRequest(
                f"status must be one of: {', '.join(Notification.Status.values)}", param="status"
            )
        queryset = queryset.filter(status=status)
    if template:
        if template not in Notification.Template.values:
            raise InvalidRequest(
                f"template must be one of: {', '.join(Notification.Template.values)}", param="template"
            )
        queryset = queryset.filter(template=template)
    return queryset


def notification_get(*, user: User, notification_id: str) -> Notification:
    """The user's notification; another user's is a 404, exactly like a missing one."""
    notification = None
    if has_prefix(notification_id, "ntf"):
        notification = Notification.objects.filter(pk=notification_id, user=user).first()
    if notification is None:
        raise NotificationNotFound(f"No such notification: '{str(notification_id)[:64]}'")
    return notification


def users_by_id(ids: Iterable[str]) -> dict[str, User]:
    return {user.pk: user for user in User.objects.filter(pk__in={i for i in ids if i})}


def wallet_owners(wallet_ids: Iterable[str]) -> dict[str, User]:
    """Each wallet's owner, in one query."""
    wallets = Wallet.objects.select_related("user").filter(pk__in={w for w in wallet_ids if w})
    return {wallet.pk: wallet.user for wallet in wallets}
