"""The payouts part of the Stripe look-alike (tests/fakes/stripe_server.py): /v1/payouts.

Endpoints: POST /v1/payouts (create: `amount`, `currency`, `destination`, `metadata`; idempotent by
`Idempotency-Key` like every POST of the fake), GET /v1/payouts/{id}, GET /v1/payouts (list, newest
first: `limit`, `starting_after`, `created[gte]`), GET /v1/tokens/btok_… (a bank account token).

Destinations are Stripe's test bank accounts (https://docs.stripe.com/connect/testing), as tokens
or as `ba_1…` ids minted by `create_bank_account(name)`:
| token                              | account number | a payout to it                              |
|------------------------------------|----------------|---------------------------------------------|
| `btok_us_verified`                 | 000123456789   | is paid                                     |
| `btok_us_verified_accountClosed`   | 000111111113   | fails with `account_closed`                 |
| `btok_us_verified_noAccount`       | 000111111116   | fails with `no_account`                     |
Anything else is `resource_missing` ("No such external account"), and nothing is created.

As at Stripe, a payout is created `pending` and settles later: `settle_payout(id)` (or
`settle_payouts()`) moves it to `paid` or `failed` as its destination says and returns the Payout
object, which a test then delivers as the `payout.paid` / `payout.failed` webhook's `data.object`.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

Params = dict[str, Any]


@dataclass(frozen=True)
class TestBankAccount:
    last4: str
    routing_number: str = "110000000"
    failure_code: str = ""
    failure_message: str = ""


TEST_BANK_ACCOUNTS = {
    "us_verified": TestBankAccount("6789"),
    "us_verified_accountClosed": TestBankAccount(
        "1113", failure_code="account_closed", failure_message="The bank account has been closed."
    ),
    "us_verified_noAccount": TestBankAccount(
        "1116",
        failure_code="no_account",
        failure_message="The bank account details on file are probably incorrect. No bank account "
        "could be located with those details.",
    ),
}


class FakeStripePayouts:
    """Mixed into FakeStripe: the handlers run with its lock held, and raise its errors."""

    _lock: Any
    _payouts: dict[str, dict[str, Any]]
    _bank_accounts: dict[str, str]  # minted ba_ id -> test bank account name

    # --- scripting and inspection ---------------------------------------------------------------
    def create_bank_account(self, name: str = "us_verified") -> str:
        assert name in TEST_BANK_ACCOUNTS, name
        minted = f"ba_1{secrets.token_hex(12)}"
        with self._lock:
            self._bank_accounts[minted] = name
        return minted

    @property
    def payouts(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._payouts.values()))

    def payout(self, payout_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._payouts[payout_id])

    def settle_payout(self, payout_id: str) -> dict[str, Any]:
        """The bank's answer arrives: `paid`, or `failed` with the destination's failure code."""
        with self._lock:
            payout = self._payouts[payout_id]
            account = TEST_BANK_ACCOUNTS[self._bank_account_name(payout["destination"]) or "us_verified"]
            if payout["status"] in {"pending", "in_transit"}:
                if account.failure_code:
                    payout.update(
                        status="failed",
                        failure_code=account.failure_code,
                        failure_message=account.failure_message,
                        failure_balance_transaction=f"txn_{secrets.token_hex(12)}",
                    )
                else:
                    payout["status"] = "paid"
            return copy.deepcopy(payout)

    def settle_payouts(self) -> list[dict[str, Any]]:
        with self._lock:
            pending = [pid for pid, p in self._payouts.items() if p["status"] in {"pending", "in_transit"}]
        return [self.settle_payout(payout_id) for payout_id in pending]

    def _bank_account_name(self, destination: str) -> str | None:
        if destination in self._bank_accounts:
            return self._bank_accounts[destination]
        name = destination.removeprefix("btok_")
        return name if destination.startswith("btok_") and name in TEST_BANK_ACCOUNTS else None

    # --- endpoints (called with the lock held) --------------------------------------------------
    def _retrieve_bank_token(self, params: Params, token: str) -> dict[str, Any]:
        from tests.fakes.stripe_server import StripeApiError

        name = self._bank_account_name(token) if token.startswith("btok_") else None
        if name is None:
            raise StripeApiError(
                404,
                "invalid_request_error",
                f"No such token: '{token}'",
                code="resource_missing",
                param="token",
            )
        account = TEST_BANK_ACCOUNTS[name]
        return {
            "id": token,
            "object": "token",
            "type": "bank_account",
            "used": False,
            "livemode": False,
            "bank_account": {
                "id": f"ba_{secrets.token_hex(12)}",
                "object": "bank_account",
                "country": "US",
                "currency": "usd",
                "last4": account.last4,
                "routing_number": account.routing_number,
                "status": "verified",
            },
        }

    def _create_payout(self, params: Params) -> dict[str, Any]:
        from tests.fakes.stripe_server import InvalidParam, _int_param, _str_param

        amount = _int_param(params, "amount", required=True)
        currency = (_str_param(params, "currency") or "").lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise InvalidParam(f"Invalid currency: {currency}", param="currency", code="parameter_missing")
        destination = _str_param(params, "destination") or ""
        if self._bank_account_name(destination) is None:
            raise InvalidParam(
                f"No such external account: '{destination}'", param="destination", code="resource_missing"
            )
        metadata = params.get("metadata", {})
        if not isinstance(metadata, dict):
            raise InvalidParam("Invalid object", param="metadata")
        now = int(time.time())
        payout = {
            "id": f"po_{secrets.token_hex(12)}",
            "object": "payout",
            "amount": amount,
            "arrival_date": now + 2 * 86_400,
            "automatic": False,
            "balance_transaction": f"txn_{secrets.token_hex(12)}",
            "created": now,
            "currency": currency,
            "description": _str_param(params, "description"),
            "destination": destination,
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": metadata,
            "method": "standard",
            "source_type": "card",
            "statement_descriptor": None,
            "status": "pending",
            "type": "bank_account",
        }
        self._payouts[payout["id"]] = payout
        return copy.deepcopy(payout)

    def _retrieve_payout(self, params: Params, payout: str) -> dict[str, Any]:
        from tests.fakes.stripe_server import StripeApiError

        if payout not in self._payouts:
            raise StripeApiError(
                404,
                "invalid_request_error",
                f"No such payout: '{payout}'",
                code="resource_missing",
                param="id",
            )
        return copy.deepcopy(self._payouts[payout])

    def _list_payouts(self, params: Params) -> dict[str, Any]:
        from tests.fakes.stripe_server import InvalidParam, _int_param

        limit = min(_int_param(params, "limit", required=False) or 10, 100)
        created = params.get("created")
        since = (
            int(created["gte"]) if isinstance(created, dict) and str(created.get("gte", "")).isdigit() else 0
        )
        found = [p for p in reversed(self._payouts.values()) if p["created"] >= since]
        after = params.get("starting_after")
        if after:
            ids = [p["id"] for p in found]
            if after not in ids:
                raise InvalidParam(
                    f"No such payout: '{after}'", param="starting_after", code="resource_missing"
                )
            found = found[ids.index(after) + 1 :]
        return {
            "object": "list",
            "url": "/v1/payouts",
            "has_more": len(found) > limit,
            "data": [copy.deepcopy(p) for p in found[:limit]],
        }
