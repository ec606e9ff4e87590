"""Whether an `AuthSession` is still alive, answered from the cache on the hot path.

Every JWT-authenticated request asks; the answer is cached, and revocation overwrites it after
commit, so the request costs no database query for it. On a cache miss the database decides.
Populating uses `add` (write only if absent) and revocation uses `set` (always overwrite): a
request that read "active" just before a logout committed can never put "active" back over the
logout's "revoked". The TTL bounds how long a lost invalidation (cache briefly unreachable at
logout) could keep a revoked session's access tokens alive. With the cache down, every request
asks the database: slower, never wrong.

A live session is cached with its user's id, so a token whose `sub` is not the user of its `sid`
(another user's live session id) is refused like a dead session.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

from apps.accounts.models import AuthSession

logger = logging.getLogger(__name__)

CACHE_SECONDS = 300
_ACTIVE = "active"  # cached as "active:<user id>"
_REVOKED = "revoked"


def _key(session_id: str) -> str:
    return f"accounts:session-state:{session_id}"


def session_is_active(*, session_id: str, user_id: str) -> bool:
    """Whether the session is alive and belongs to `user_id`."""
    try:
        state = cache.get(_key(session_id))
    except Exception:  # the cache is an optimisation here: the database answers instead
        logger.warning("session state cache unreachable; asking the database", exc_info=True)
        return _state_in_database(session_id) == _active(user_id)
    if state is None:
        state = _state_in_database(session_id)
        cache.add(_key(session_id), state, timeout=CACHE_SECONDS)
    elif state != _REVOKED and not state.startswith(f"{_ACTIVE}:"):
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
