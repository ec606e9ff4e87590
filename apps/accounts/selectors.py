from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import Permission
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from rest_framework.exceptions import NotAuthenticated

from apps.accounts.keys import KEY_PREFIX, hash_api_key_secret
from apps.accounts.models import ApiKey, User
from apps.accounts.session_cache import api_key_principal
from apps.core.errors import NotFound

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser
    from rest_framework.request import Request


def user_get_by_email(*, email: str) -> User | None:
    """Case-insensitive, through the lower(email) unique index."""
    return User.objects.alias(email_lower=Lower("email")).filter(email_lower=email.strip().lower()).first()


def user_has_permission(user: User | AnonymousUser | None, permission: str) -> bool:
    """`user.has_perm(permission)` in one query, for checks on the hot path of every request.

    Django's `has_perm` loads every permission the user has, directly and through groups (two
    queries), to answer for one. Permissions here come only from `ModelBackend` (roles are groups),
    so asking for the one permission, either way, is the same answer. Remembered on the user
    object, which lives for one request, as `has_perm` remembers its own. No query at all when
    authentication has put the user's permissions on it (`apps.accounts.session_cache`).
    """
    if not (user and user.is_authenticated and user.is_active) or getattr(user, "customer_role_only", False):
        return False
    if user.is_superuser:
        return True
    known = user.__dict__.get("_perm_cache")  # ModelBackend's own, as filled from the session cache
    if known is not None:
        return permission in known
    answers = user.__dict__.setdefault("_permission_answers", {})
    if permission not in answers:
        app_label, codename = permission.split(".", 1)
        answers[permission] = (
            Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            .filter(Q(user=user) | Q(group__user=user))
            .exists()
        )
    return answers[permission]


def principal_id(request: Request) -> str | None:
    """Who is calling, for scoping idempotency keys and throttles: the user's id, or None.

    A JWT session and an API key of the same user are one principal: they own the same objects,
    so they share idempotency keys and rate limits.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return str(user.pk)


def authenticated_user(request: Request) -> User:
    """The calling user of a view that requires one (IsAuthenticated, the default, or
    IsLoggedInUser): never anonymous there, so a view's services get a `User`. Should a view that
    lets anyone in ask anyway, the call is refused as unauthenticated (401)."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def request_actor(request: Request) -> User | ApiKey | AnonymousUser:
    """The actor for the audit trail: the API key when one was used, otherwise the user (anonymous
    on an endpoint open to anyone, which the audit trail records as such)."""
    return request.auth if isinstance(request.auth, ApiKey) else request.user


def api_key_get_by_secret(*, secret: str, cached: bool = False) -> ApiKey | None:
    """The active key of an active user matching the secret, with its user; None otherwise.
    `cached`: from the authentication cache (a read-only snapshot), for authentication."""
    if not secret.startswith(KEY_PREFIX):
        return None
    if cached:
        return api_key_principal(hashed_key=hash_api_key_secret(secret))
    return (
        ApiKey.objects.select_related("user")
        .filter(hashed_key=hash_api_key_secret(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )


def api_key_list(*, user: User) -> QuerySet[ApiKey]:
    """The user's keys, revoked ones included (for `apps.core.pagination`, which orders them)."""
    return ApiKey.objects.filter(user=user)


def api_key_get(*, user: User, api_key_id: str) -> ApiKey:
    """Another user's key is as missing as a key that never existed."""
    api_key = ApiKey.objects.filter(user=user, pk=api_key_id).first()
    if api_key is None:
        raise NotFound("No such API key.", param="id")
    return api_key
