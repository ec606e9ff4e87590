"""Transfers, single and batched: each is one call of a PostgreSQL function (apps.wallets.engine).

`wallet_transfer_v2` (migration wallets 0006) and `wallet_transfer_batch_v2` (0009) lock, check and
write everything a transfer writes (entry, postings, balances, transaction row, outbox events,
audit row) in one round trip, both asking `wallet_transfer_refusal`, the one place a transfer's
rules live (the batch writes its items' rows set-based, one statement per kind of row). This module
makes the ids, passes who acts, hands the events over and bumps the caches after commit, and builds
the answer from what the function returned, without reading the rows back.

Both services are durable (`durable_atomic`), except when TransferCreateApi/TransferBatchApi call
them inside the one transaction `@idempotent(atomic=True)` opened: then the idempotency claim, the
function call and the stored response commit together (apps.core.idempotency).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apps.accounts.models import User
from apps.audit.chain import CHAINS
from apps.audit.services import CHAIN_LOCK_KEY, AuditContext, audit_context
from apps.core.actors import Actor
from apps.core.errors import ApplicationError
from apps.core.idempotency import durable_atomic
from apps.core.ids import new_id, new_pk
from apps.core.models import OutboxEvent
from apps.core.outbox import hand_over_on_commit
from apps.ledger.models import JournalEntry
from apps.wallets import cache, engine
from apps.wallets.locks import retry_on_lock_conflict
from apps.wallets.models import Transaction

BATCH_MAX_ITEMS = 100
_EVENTS_PER_TRANSFER = 3  # wallet.funds_deducted, wallet.funds_added, transaction.completed
# The last eight parameters of both: audit_context's six fields, the chains, the lock key.
_TRANSFER_SQL = (
    "SELECT * FROM wallet_transfer_v2(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_BATCH_SQL = (
    "SELECT * FROM wallet_transfer_batch_v2(%s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


@dataclass(frozen=True, slots=True)
class TransferRequest:
    source_wallet_id: str
    destination_wallet_id: str
    amount: int
    description: str | None = None


@retry_on_lock_conflict()
@durable_atomic
def wallet_transfer(
    *,
    actor: Actor,
    user: User,
    source_wallet_id: str,
    destination_wallet_id: str,
    amount: int,
    description: str | None = None,
) -> Transaction:
    """Moves `amount` from the user's wallet to any active wallet in the same currency.

    Both rows are locked in id order before anything is read, so concurrent transfers (even A→B
    against B→A) queue instead of deadlocking, and the funds check sees a balance nobody else can
    change until commit. Every refusal is raised before anything is written.
    """
    request = TransferRequest(source_wallet_id, destination_wallet_id, amount, description)
    ids = _Ids.make()
    who = audit_context(actor=actor)
    currency, created_at, source_user, destination_user = engine.call(
        _TRANSFER_SQL,
        [
            user.pk,
            request.source_wallet_id,
            request.destination_wallet_id,
            request.amount,
            request.description,
            ids.transaction,
            ids.entry,
            ids.events,
            *_who(who),
        ],
    )
    hand_over_on_commit(ids.events)
    cache.bump_on_commit(
        wallet_ids=[source_wallet_id, destination_wallet_id], user_ids={source_user, destination_user}
    )
    return _written(request, ids=ids, currency=currency, created_at=created_at)


@retry_on_lock_conflict()
@durable_atomic
def wallet_transfer_batch(
    *, actor: Actor, user: User, transfers: Sequence[TransferRequest], atomic: bool = True
) -> list[Transaction | ApplicationError]:
    """Runs up to 100 transfers from the user's wallets in one transaction and one function call.

    Every wallet of the batch is locked once, in id order, before any item runs, and the items run
    in input order under the rules of a single transfer. `atomic`: the first refused item raises
    its error, its parameter named `transfers[i].<param>`, and nothing moves. Otherwise each item's
    result comes back in input order, a refused one as its error, having moved nothing.
    """
    batch = new_id("bat")
    items = [(request, _Ids.make()) for request in transfers]
    batch_event = new_pk(OutboxEvent)
    who = audit_context(actor=actor)
    rows = engine.call_rows(
        _BATCH_SQL,
        [
            user.pk,
            json.dumps(
                [
                    {
                        "source_wallet": request.source_wallet_id,
                        "destination_wallet": request.destination_wallet_id,
                        "amount": request.amount,
                        "description": request.description,
                        "transaction": ids.transaction,
                        "entry": ids.entry,
                        "events": ids.events,
                    }
                    for request, ids in items
                ]
            ),
            atomic,
            batch,
            batch_event,
            *_who(who),
        ],
    )
    results: list[Transaction | ApplicationError] = []
    event_ids: list[str] = []
    wallet_ids: set[str] = set()
    user_ids: set[str] = set()
    for (request, ids), (refusal, param, message, currency, created_at, source_user, destination_user) in zip(
        items, rows, strict=True
    ):
        if refusal is not None:
            results.append(engine.refusal(refusal, param=param, message=message))
            continue
        results.append(_written(request, ids=ids, currency=currency, created_at=created_at))
        event_ids.extend(ids.events)
        wallet_ids |= {request.source_wallet_id, request.destination_wallet_id}
        user_ids |= {source_user, destination_user}
    if event_ids:
        hand_over_on_commit([*event_ids, batch_event])
        cache.bump_on_commit(wallet_ids=sorted(wallet_ids), user_ids=user_ids)
    return results


@dataclass(frozen=True, slots=True)
class _Ids:
    transaction: str
    entry: str
    events: list[str]

    @classmethod
    def make(cls) -> _Ids:
        return cls(
            transaction=new_pk(Transaction),
            entry=new_pk(JournalEntry),
            events=[new_pk(OutboxEvent) for _ in range(_EVENTS_PER_TRANSFER)],
        )


def _who(who: AuditContext) -> list[Any]:
    return [
        who.actor_type,
        who.actor_id,
        who.actor_repr,
        who.correlation_id,
        who.ip,
        who.user_agent,
        CHAINS,
        CHAIN_LOCK_KEY,
    ]


def _written(request: TransferRequest, *, ids: _Ids, currency: str, created_at: datetime) -> Transaction:
    """The transaction row as the function wrote it."""
    txn = Transaction(
        id=ids.transaction,
        type=Transaction.Type.TRANSFER,
        status=Transaction.Status.COMPLETED,
        amount=request.amount,
        currency=currency,
        source_wallet_id=request.source_wallet_id,
        destination_wallet_id=request.destination_wallet_id,
        description=request.description,
        journal_entry_id=ids.entry,
        created_at=created_at,
        updated_at=created_at,
    )
    txn._state.adding, txn._state.db = False, "default"
    return txn
