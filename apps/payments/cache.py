"""Payment lists are read through the cache under versioned scopes (apps.core.cache).

Every payment write bumps its owner's scope and the all-payments scope (what reviewers list)
after commit, so no list served after a change can predate it.
"""

from __future__ import annotations

from collections.abc import Iterable

from apps.core import cache as versioned

ALL_PAYMENTS = "payments:all"


def owner_scope(owner_id: str) -> str:
    return f"payments:owner:{owner_id}"


def bump_on_commit(*, owner_ids: Iterable[str]) -> None:
    versioned.bump_on_commit([ALL_PAYMENTS, *(owner_scope(owner_id) for owner_id in owner_ids)])
