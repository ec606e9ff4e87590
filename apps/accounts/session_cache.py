"""Who a JWT request is, answered from the cache on the hot path: whether its `AuthSession` is still
alive, and what the request needs of its user.

**Session state.** Every JWT-authenticated request asks; the answer is cached, and revocation
overwrites it after commit, so the request costs no database query for it. On a cache miss the
database decides. Populating uses `add` (write only if absent) and revocation uses `set` (always
overwrite): a request that read "active" just before a logout committed can never put "active"
back over the logout's "revoked". A live session is cached with its user's id, so a token whose
`sub` is not the user of its `sid` (another user's live session id) is refused like a dead session.

**The user.** Next to it, a snapshot of the user: id, email, full name, the active/staff/superuser
flags, roles and permissions (direct and through groups) — what authentication, `GET /auth/me`
and the permission checks of the views read. A snapshot is valid only under the generations it
was read under: the user's own (`user_changed` replaces it after any commit that changes the user:
a save, a deletion, groups or permissions, a password change or sessions ended) and a global one
for changes to groups or permissions themselves (`permissions_changed`). The generations are read
*before* the database is, so a request that read the user just before a change committed stores
its snapshot under a generation already replaced: the next request misses it and reads the
database again. No snapshot can outlive the change it predates.

One cache round trip answers both (session state, both generations, snapshot). The user built
from a snapshot is marked so that saving or deleting it raises (`models.CachedUserNotSaved`): it
is read-only, and the fields not cached (password, last_login, date_joined) are deferred, loaded
from the database if something reads them.

With the cache down every request asks the database: slower, never wrong. The TTLs bound how long
a lost invalidation (cache briefly unreachable at the commit) could keep stale state alive.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any, TypeGuard

from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache

from apps.accounts.models import CACHED_ROLES, FROM_CACHE, ApiKey, AuthSession, User

logger = logging.getLogger(__name__)

CACHE_SECONDS = 300
GENERATION_SECONDS = 24 * 3600  # outlives the snapshots; a lost generation only causes a miss
_ACTIVE = "active"  # cached as "active:<user id>"
_REVOKED = "revoked"
_PERMISSIONS_GENERATION = "accounts:permissions-generation"
# The user's fields a snapshot holds (the others are deferred on the user built from it).
SNAPSHOT_FIELDS = ("id", "email", "full_name", "is_active", "is_staff", "is_superuser")
# An API key's, likewise (its last use is told by a marker of its own: see api_key_use_is_new).
API_KEY_FIELDS = ("id", "user_id", "name", "prefix", "created_at", "last_used_at")
_SNAPSHOT_VERSION = 1


def _key(session_id: str) -> str:
    return f"accounts:session-state:{session_id}"


def _api_key_key(hashed_key: str) -> str:
    return f"accounts:api-key:{hashed_key}"


def _user_key(user_id: str) -> str:
    return f"accounts:user-snapshot:{user_id}"


def _user_generation_key(user_id: str) -> str:
    return f"accounts:user-generation:{user_id}"


class SessionNotLive(Exception):
    """The session has ended, or is not the user's."""


def session_user(*, session_id: str, user_id: str) -> User | None:
    """The active user `user_id` of a live session of theirs; None when that user is inactive or
    gone. SessionNotLive when the session has ended or belongs to someone else."""
    keys = [_key(session_id), *_user_keys(user_id)]
    try:
        found = cache.get_many(keys)
    except Exception:  # the cache is an optimisation here: the database answers instead
        logger.warning("session cache unreachable; asking the database", exc_info=True)
        if _state_in_database(session_id) != _active(user_id):
            raise SessionNotLive()
        return _user_in_database(user_id)
    if not _session_state_is_active(session_id, user_id, found.get(keys[0])):
        raise SessionNotLive()
    return _user(user_id, found)


def _session_state_is_active(session_id: str, user_id: str, state: Any) -> bool:
    if state is None:
        state = _state_in_database(session_id)
        _quietly(cache.add, _key(session_id), state, timeout=CACHE_SECONDS)
    elif not isinstance(state, str) or (state != _REVOKED and not state.startswith(f"{_ACTIVE}:")):
        state = _state_in_database(session_id)  # a value of an older format: the database decides
    return state == _active(user_id)


def _active(user_id: object) -> str:
    return f"{_ACTIVE}:{user_id}"


def _state_in_database(session_id: str) -> str:
    rows = list(AuthSession.objects.filter(pk=session_id).values_list("revoked_at", "user_id")[:1])
    if not rows or rows[0][0] is not None:
        return _REVOKED
    return _active(rows[0][1])


def remember_revoked(*, session_id: str) -> None:
    cache.set(_key(session_id), _REVOKED, timeout=CACHE_SECONDS)


# --- API keys ----------------------------------------------------------------------------------


def api_key_principal(*, hashed_key: str) -> ApiKey | None:
    """The active API key with this hash, its active user on `.user`; None otherwise.

    Cached like a session's state: a live key as a snapshot written with `add`, a revoked one as
    "revoked" written with `set` on the revocation's commit, so a request that read the key just
    before it was revoked cannot put it back. Its user comes from the user's snapshot (above). An
    unknown hash is never cached: guessing keys does not fill the cache.
    """
    key = _api_key_key(hashed_key)
    try:
        entry = cache.get(key)
    except Exception:
        logger.warning("session cache unreachable; asking the database", exc_info=True)
        return _api_key_in_database(hashed_key, with_user=True)
    if entry is None:
        api_key = _api_key_in_database(hashed_key, with_user=False)
        if api_key is None:
            return None
        entry = _REVOKED if api_key.revoked_at is not None else _api_key_snapshot(api_key)
        _quietly(cache.add, key, entry, timeout=CACHE_SECONDS)
    if not (isinstance(entry, dict) and entry.get("v") == _SNAPSHOT_VERSION):
        return None if entry == _REVOKED else _api_key_in_database(hashed_key, with_user=True)
    api_key = _api_key_from_snapshot(entry)
    try:
        found = cache.get_many(_user_keys(api_key.user_id))
    except Exception:
        logger.warning("session cache unreachable; asking the database", exc_info=True)
        found = {}
    user = _user(api_key.user_id, found)
    if user is None:
        return None
    api_key.user = user
    return api_key


def _api_key_in_database(hashed_key: str, *, with_user: bool) -> ApiKey | None:
    """With its active user (the request's), or any row with the hash, revoked or not (to cache)."""
    if not with_user:
        return ApiKey.objects.filter(hashed_key=hashed_key).first()
    api_key = ApiKey.objects.filter(hashed_key=hashed_key, revoked_at__isnull=True).first()
    user = _user_in_database(api_key.user_id) if api_key is not None else None
    if api_key is None or user is None:
        return None
    api_key.user = user
    return api_key


def _api_key_snapshot(api_key: ApiKey) -> dict[str, Any]:
    return {"v": _SNAPSHOT_VERSION, "fields": [getattr(api_key, name) for name in API_KEY_FIELDS]}


def _api_key_from_snapshot(snapshot: dict[str, Any]) -> ApiKey:
    values = dict(zip(API_KEY_FIELDS, snapshot["fields"], strict=True))
    names = [field.attname for field in ApiKey._meta.concrete_fields if field.attname in values]
    api_key = ApiKey.from_db("default", names, [values[name] for name in names])
    api_key.__dict__[FROM_CACHE] = True
    return api_key


def remember_api_key_revoked(*, hashed_key: str) -> None:
    cache.set(_api_key_key(hashed_key), _REVOKED, timeout=CACHE_SECONDS)


def forget_api_key(*, hashed_key: str) -> None:
    cache.delete(_api_key_key(hashed_key))


def api_key_use_is_new(*, api_key_id: str, seconds: int) -> bool:
    """Whether no use of the key was recorded in the last `seconds` (then this one is); True with
    the cache down (the caller's row, read from the database then, has the last use)."""
    try:
        return bool(cache.add(f"accounts:api-key-used:{api_key_id}", 1, timeout=seconds))
    except Exception:
        logger.warning("session cache unreachable; recording the API key's use", exc_info=True)
        return True


# --- the user's snapshot ------------------------------------------------------------------------


def _user_keys(user_id: str) -> list[str]:
    """What `_user` reads, fetched by the caller in the same round trip as its own keys."""
    return [_user_generation_key(user_id), _PERMISSIONS_GENERATION, _user_key(user_id)]


def _user(user_id: str, found: dict[str, Any]) -> User | None:
    """The active user from its snapshot in `found` when still valid, else from the database."""
    generation_key, permissions_key, snapshot_key = _user_keys(user_id)
    generation, permissions_generation = found.get(generation_key), found.get(permissions_key)
    snapshot = found.get(snapshot_key)
    fresh = isinstance(generation, str) and isinstance(permissions_generation, str)
    if fresh and _valid(snapshot, (str(generation), str(permissions_generation))):
        return _user_from_snapshot(snapshot)
    # Generations first, then the database: see the module's docstring.
    generation = generation or _new_generation(generation_key)
    permissions_generation = permissions_generation or _new_generation(permissions_key)
    user = _user_in_database(user_id)
    if user is not None and generation and permissions_generation:
        _store(user, (generation, permissions_generation))
    return user


def _user_in_database(user_id: str) -> User | None:
    """The active user, with roles and permissions read so that the request asks nothing more."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    user.__dict__[CACHED_ROLES] = tuple(user.roles)
    if not user.is_superuser:  # a superuser's checks never read permissions
        ModelBackend().get_all_permissions(user)  # fills _user_perm_cache, _group_perm_cache, _perm_cache
    return user


def _store(user: User, generations: tuple[str, str]) -> None:
    snapshot = {
        "v": _SNAPSHOT_VERSION,
        "generations": list(generations),
        "fields": [getattr(user, name) for name in SNAPSHOT_FIELDS],
        "roles": list(user.__dict__[CACHED_ROLES]),
        "permissions": None
        if user.is_superuser
        else [sorted(user._user_perm_cache), sorted(user._group_perm_cache)],  # type: ignore[attr-defined]
    }
    _quietly(cache.set, _user_key(user.pk), snapshot, timeout=CACHE_SECONDS)


def _valid(snapshot: Any, generations: tuple[str, str]) -> TypeGuard[dict[str, Any]]:
    return (
        isinstance(snapshot, dict)
        and snapshot.get("v") == _SNAPSHOT_VERSION
        and tuple(snapshot.get("generations", ())) == generations
    )


def _user_from_snapshot(snapshot: dict[str, Any]) -> User:
    # from_db, as a query would: a persisted instance whose other fields are deferred.
    # (from_db takes the values of the fields it is given in the model's order of fields)
    values = dict(zip(SNAPSHOT_FIELDS, snapshot["fields"], strict=True))
    names = [field.attname for field in User._meta.concrete_fields if field.attname in values]
    user = User.from_db("default", names, [values[name] for name in names])
    user.__dict__[CACHED_ROLES] = tuple(snapshot["roles"])
    user.__dict__[FROM_CACHE] = True
    if snapshot["permissions"] is not None:
        direct, through_groups = (set(names) for names in snapshot["permissions"])
        user.__dict__.update(
            _user_perm_cache=direct, _group_perm_cache=through_groups, _perm_cache=direct | through_groups
        )
    return user


def _new_generation(key: str) -> str | None:
    """A fresh generation for an absent key, or the one another request just set; None if unsure."""
    token = secrets.token_hex(8)
    try:
        if cache.add(key, token, timeout=GENERATION_SECONDS):
            return token
        current = cache.get(key)
    except Exception:
        logger.warning("session cache unreachable; not caching the user", exc_info=True)
        return None
    return current if isinstance(current, str) else None


# --- invalidation (call after the commit) -------------------------------------------------------


def user_changed(*, user_ids: Iterable[str]) -> None:
    """The users' snapshots are stale from now on: their next requests read the database."""
    cache.set_many(
        {_user_generation_key(user_id): secrets.token_hex(8) for user_id in user_ids},
        timeout=GENERATION_SECONDS,
    )


def permissions_changed() -> None:
    """Groups or permissions themselves changed: every snapshot is stale from now on."""
    cache.set(_PERMISSIONS_GENERATION, secrets.token_hex(8), timeout=GENERATION_SECONDS)


def _quietly(operation: Any, *args: Any, **kwargs: Any) -> None:
    try:
        operation(*args, **kwargs)
    except Exception:
        logger.warning("session cache unreachable; not caching", exc_info=True)
