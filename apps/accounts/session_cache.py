"""Whether an `AuthSession` is still alive, answered from the cache on the hot path.

Every JWT-authenticated request asks; the answer is cached, and revocation overwrites it after
commit, so the request costs no database query for it. On a cache miss the database decides.
Populating uses `add` (write only if absent) and revocation uses `set` (always overwrite): a
request that read "active" just before a logout committed can never put "active" back over the
logout's "revoked". The TTL bounds how long a lost invalidation (cache briefly unreachable at
logout) could keep a revoked session's access tokens alive. With the cache down, every request
asks the database: slower, never wrong.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

from apps.accounts.models import AuthSession

logger = logging.getLogger(__name__)

CACHE_SECONDS = 300
_ACTIVE = "active"
_REVOKED = "revoked"


def _key(session_id: str) -> str:
    return f"accounts:session-state:{session_id}"


def session_is_active(*, session_id: str) -> bool:
    try:
        state = cache.get(_key(session_id))
    except Exception:  # the cache is an optimisation here: the database answers instead
        logger.warning("session state cache unreachable; asking the database", exc_info=True)
        return _state_in_database(session_id) == _ACTIVE
    if state is None:
        state = _state_in_database(session_id)
        cache.add(_key(session_id), state, timeout=CACHE_SECONDS)
    return state == _ACTIVE


def _state_in_database(session_id: str) -> str:
    revoked_at = list(AuthSession.objects.filter(pk=session_id).values_list("revoked_at", flat=True)[:1])
    return _ACTIVE if revoked_at == [None] else _REVOKED


def remember_revoked(*, session_id: str) -> None:
    cache.set(_key(session_id), _REVOKED, timeout=CACHE_SECONDS)
