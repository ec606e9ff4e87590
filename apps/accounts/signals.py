"""A password saved on a user outside the accounts services ends every session of the user.

The admin's password forms (a user's "change password" page, the staff member's own) and the
`changepassword` command set the password with `User.set_password()` and `save()`. Django keeps
the new raw password on the instance (`_password`) until that save has sent `post_save`, which is
how a save that changes the password is told from any other. The API's password services store
the hash with an UPDATE and end the sessions themselves, so they never pass here twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import post_delete

from apps.accounts import session_cache
from apps.accounts.models import ApiKey, User
from apps.accounts.services import user_password_changed_elsewhere


def end_sessions_on_new_password(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    if created or getattr(instance, "_password", None) is None:
        return
    user_password_changed_elsewhere(user=instance)


# --- the authentication cache's invalidation ----------------------------------------------------
# Authentication reads the user from a cached snapshot (apps.accounts.session_cache). Any change
# to what it holds replaces the generation it was cached under once the change commits, so the
# very next request reads the database. Queryset `update()`s send no signal: the services that
# use one (a new password) invalidate themselves (user_sessions_end).


def _after_commit(callback: Callable[[], None]) -> None:
    # robust: the change stands even if the cache is unreachable; the snapshot TTL bounds the staleness.
    transaction.on_commit(callback, robust=True)


def _users_changed(user_ids: Iterable[Any]) -> None:
    ids = [str(user_id) for user_id in user_ids]
    if ids:
        _after_commit(functools.partial(session_cache.user_changed, user_ids=ids))


def forget_cached_user(sender: type[User], instance: User, **kwargs: Any) -> None:
    """post_save, post_delete of a user: deactivated, renamed, new email, staff flags, deleted."""
    _users_changed([instance.pk])


def forget_cached_permissions(sender: type[Any], **kwargs: Any) -> None:
    """post_save, post_delete of a group (its name is a role) or a permission: every snapshot."""
    _after_commit(session_cache.permissions_changed)


def forget_cached_memberships(
    sender: type[Any], instance: Any, action: str, reverse: bool, pk_set: set[Any] | None, **kwargs: Any
) -> None:
    """m2m_changed of User.groups, User.user_permissions (either side) and Group.permissions."""
    if not action.startswith("post_"):
        return
    if sender is Group.permissions.through:
        _after_commit(session_cache.permissions_changed)
    elif not reverse:  # user.groups.add(...), user.user_permissions.clear(), ...
        _users_changed([instance.pk])
    elif pk_set is not None:  # group.user_set.add(user, ...)
        _users_changed(pk_set)
    else:  # group.user_set.clear(): whose memberships went is no longer known
        _after_commit(session_cache.permissions_changed)


def forget_cached_api_key(sender: type[ApiKey], instance: ApiKey, **kwargs: Any) -> None:
    """post_save, post_delete of an API key: a revoked (or deleted) key is refused from the commit on."""
    if instance.revoked_at is not None or kwargs.get("signal") is post_delete:
        callback = functools.partial(session_cache.remember_api_key_revoked, hashed_key=instance.hashed_key)
    else:
        callback = functools.partial(session_cache.forget_api_key, hashed_key=instance.hashed_key)
    _after_commit(callback)
