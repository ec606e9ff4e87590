"""Cached balances other apps keep of ledger accounts, registered so `verify_ledger` proves them.

The ledger sits below the apps that cache balances of its accounts (a wallet's `balance`), so it
cannot import them: each registers a `CachedBalanceCheck` in its AppConfig.ready, and
`manage.py verify_ledger` compares every registered cache with the postings, batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CachedBalanceCheck:
    """One kind of cached balance. `noun` / `plural` name a holder in the command's output."""

    noun: str  # "wallet"
    plural: str  # "wallets"
    count: Callable[[], int]
    # (after_id, limit) -> [(holder id, ledger account id, cached balance)], in holder id order
    batch: Callable[[str, int], list[tuple[str, str, int]]]


_checks: dict[str, CachedBalanceCheck] = {}


def register_cached_balance_check(check: CachedBalanceCheck) -> None:
    """Registers (or replaces, by noun: ready() may run twice) a cached balance to verify."""
    _checks[check.noun] = check


def cached_balance_checks() -> list[CachedBalanceCheck]:
    return list(_checks.values())


@dataclass(frozen=True)
class SystemBalanceCheck:
    """What a system account must hold, as the app that posts to it knows: `expected()` gives,
    per currency, the balance its open objects add up to (a currency absent: 0)."""

    code: str  # the system account's code, e.g. "payouts_in_transit"
    description: str  # what its balance stands for, e.g. "open payouts"
    expected: Callable[[], dict[str, int]]


_system_checks: dict[str, SystemBalanceCheck] = {}


def register_system_balance_check(check: SystemBalanceCheck) -> None:
    """Registers (or replaces, by code) a system account whose balance `verify_ledger` proves."""
    _system_checks[check.code] = check


def system_balance_checks() -> list[SystemBalanceCheck]:
    return list(_system_checks.values())
