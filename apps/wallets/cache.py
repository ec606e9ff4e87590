"""Scopes of the wallet read cache (apps.core.cache): one per wallet, one per user's wallet list."""

from __future__ import annotations

from collections.abc import Iterable

from apps.core import cache as versioned
from apps.core.cache import read_through

__all__ = ["bump_on_commit", "read_through", "user_scope", "wallet_scope"]


def wallet_scope(wallet_id: str) -> str:
    return f"wallets:wallet:{wallet_id}"


def user_scope(user_id: str) -> str:
    return f"wallets:user:{user_id}"


def bump_on_commit(*, wallet_ids: Iterable[str], user_ids: Iterable[str]) -> None:
    versioned.bump_on_commit([*(wallet_scope(w) for w in wallet_ids), *(user_scope(u) for u in user_ids)])
