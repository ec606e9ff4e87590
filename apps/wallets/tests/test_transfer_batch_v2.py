"""`wallet_transfer_batch_v2` (set-based, migration 0009) answers and writes exactly what v1 did.

Each random batch runs twice from the same state with the same ids: first through
`wallet_transfer_batch_v1` as migration 0006 created it (put back for the test, with its own
`wallet_transfer_apply`), inside a savepoint that is rolled back, then through v2, which is kept, so
the next batch starts from what v2 left. Both runs must give the same results and write the same
rows: balances, journal entries and postings, transaction rows, outbox events (payloads, order),
audit rows (before/after). Only what the clock or a sequence stamps may differ: timestamps, and
the audit rows' hashes, which chain those timestamps. The books and the chain verify afterwards.
"""

from __future__ import annotations

import json
import random
from importlib import import_module
from io import StringIO
from typing import Any

import pytest
from django.apps import apps as registry
from django.core.management import call_command
from django.db import connection, transaction

from apps.audit.chain import chain_hash
from apps.audit.models import AuditLog
from apps.audit.services import audit_context
from apps.core.correlation import (
    reset_correlation_id,
    reset_request_meta,
    set_correlation_id,
    set_request_meta,
)
from apps.core.errors import ApplicationError
from apps.core.ids import new_id, new_pk
from apps.core.models import OutboxEvent
from apps.ledger.models import JournalEntry, Posting
from apps.wallets import engine
from apps.wallets.models import Transaction, Wallet
from apps.wallets.services import wallet_freeze
from apps.wallets.tests.factories import UserFactory, WalletFactory, fund

pytestmark = pytest.mark.django_db

V1 = import_module("apps.wallets.migrations.0006_transfer_batch_function")
V2 = import_module("apps.wallets.migrations.0009_transfer_batch_set_based")
REFUSAL_CODES = {"PW001", "PW002", "PW003", "PW004", "PW005"}


@pytest.fixture
def v1_installed():
    """Migration 0006's functions beside v2, for this test's transaction only."""
    with connection.schema_editor() as editor:
        V1.install(registry, editor)


@pytest.fixture
def request_meta():
    correlation = set_correlation_id("corr-batch-v2")
    meta = set_request_meta(ip="::ffff:192.0.2.7", user_agent='curl/8 "quoted" \U0001f4b8 zoë')
    yield
    reset_request_meta(meta)
    reset_correlation_id(correlation)


@pytest.fixture
def wallets():
    """The caller's USD, EUR and frozen GBP wallets; others' USD wallets, one frozen, one EUR."""
    staff = UserFactory(is_staff=True, is_superuser=True)
    caller = UserFactory(email="zoë@exämple.test")
    own = [WalletFactory(user=caller), WalletFactory(user=caller, currency="EUR")]
    frozen_own = WalletFactory(user=caller, currency="GBP")
    others = [WalletFactory() for _ in range(4)] + [WalletFactory(currency="EUR")]
    for wallet in [*own, frozen_own, *others]:
        fund(wallet, 400)
    wallet_freeze(actor=staff, wallet_id=frozen_own.pk, note="review")
    wallet_freeze(actor=staff, wallet_id=others[3].pk, note="review")
    return caller, [w.pk for w in own], frozen_own.pk, [w.pk for w in others]


def _random_batch(rng: random.Random, own: list[str], frozen_own: str, others: list[str]) -> list[dict]:
    """Mostly good transfers, amounts that run the sources dry mid-batch, and every refusal."""
    items = []
    for _ in range(rng.randint(1, 25)):
        kind = rng.choices(["ok", "same", "not_mine", "unknown", "frozen_source", "any"], [8, 1, 1, 1, 1, 3])[
            0
        ]
        source = rng.choice(own)
        destination = rng.choice([*own, *others])
        if kind == "same":
            destination = source
        elif kind == "not_mine":
            source = rng.choice(others)
        elif kind == "unknown":
            source, destination = rng.choice([(source, "wal_nope"), ("wal_gone", destination)])
        elif kind == "frozen_source":
            source = frozen_own
        elif kind == "any":
            source, destination = rng.choice([*own, frozen_own]), rng.choice([*own, frozen_own, *others])
        items.append(
            {
                "source_wallet": source,
                "destination_wallet": destination,
                "amount": rng.randint(1, 160),
                "description": rng.choice([None, "rent — £", 'a "quoted" note']),
                "transaction": new_pk(Transaction),
                "entry": new_pk(JournalEntry),
                "events": [new_pk(OutboxEvent) for _ in range(3)],
            }
        )
    return items


def _call(function: str, params: list[Any]) -> list[tuple] | ApplicationError:
    sql = f"SELECT * FROM {function}(%s, %s::jsonb, {', '.join(['%s'] * 11)})"  # noqa: S608 - our names
    try:
        with transaction.atomic():
            return engine.call_rows(sql, params)
    except ApplicationError as refused:
        return refused


def _written(items: list[dict], batch_event: str, audit_after: int) -> dict[str, Any]:
    """Every row a batch writes, without what the clock or a sequence stamps."""
    event_ids = [event for item in items for event in item["events"]] + [batch_event]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, event_type, aggregate_type, aggregate_id, payload, correlation_id, published_at, "
            "publish_attempts, delivered_at FROM core_outboxevent WHERE id = ANY(%s) ORDER BY relay_seq",
            [event_ids],
        )
        events = [
            (*row[:4], json.loads(row[4]) if isinstance(row[4], str) else row[4], *row[5:]) for row in cursor
        ]
    audit = list(AuditLog.objects.filter(id__gt=audit_after).order_by("id"))
    transactions = Transaction.objects.filter(pk__in=[item["transaction"] for item in items])
    return {
        "balances": dict(Wallet.objects.values_list("pk", "balance")),
        "entries": list(
            JournalEntry.objects.filter(pk__in=[item["entry"] for item in items])
            .order_by("created_at")
            .values_list("pk", "kind", "memo", "correlation_id")
        ),
        "postings": list(
            Posting.objects.filter(entry_id__in=[item["entry"] for item in items])
            .order_by("id")
            .values_list("entry_id", "account_id", "amount", "currency")
        ),
        "transactions": [
            {k: v for k, v in row.items() if k not in {"created_at", "updated_at"}}
            for row in transactions.order_by("created_at").values()
        ],
        "events": events,
        "audit": [
            (
                row.actor_type,
                row.actor_id,
                row.actor_repr,
                row.action,
                row.entity_type,
                row.entity_id,
                row.before,
                row.after,
                row.correlation_id,
                row.ip,
                row.user_agent,
                row.chain,
            )
            for row in audit
        ],
        # Each audit row hashes as the chain is verified, and follows the one before it.
        "audit_chained": all(row.hash == chain_hash(row) for row in audit)
        and all(b.prev_hash == a.hash for a, b in zip(audit, audit[1:], strict=False)),
        "stamped_in_item_order": [t.pk for t in transactions.order_by("created_at", "pk")]
        == [item["transaction"] for item in items if transactions.filter(pk=item["transaction"]).exists()],
    }


def _answer(result: list[tuple] | ApplicationError, items: list[dict]) -> Any:
    """The function's answer without its timestamps; each completed item's is its transaction's."""
    if isinstance(result, ApplicationError):
        return (type(result).__name__, result.param, str(result))
    stamped = dict(
        Transaction.objects.filter(pk__in=[i["transaction"] for i in items]).values_list("pk", "created_at")
    )
    answer = []
    for item, (refusal, param, message, currency, created_at, source_user, destination_user) in zip(
        items, result, strict=True
    ):
        assert created_at == stamped.get(item["transaction"])
        answer.append((refusal, param, message, currency, source_user, destination_user))
    return answer


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_v2_answers_and_writes_what_v1_did_for_random_batches(v1_installed, request_meta, wallets, seed):
    caller, own, frozen_own, others = wallets
    rng = random.Random(seed)
    who = engine.audit_args(audit_context(actor=caller))
    seen: set[str] = set()
    outcomes = set()
    for round_ in range(14):
        items = _random_batch(rng, own, frozen_own, others)
        atomic = round_ % 2 == 0
        batch_event = new_pk(OutboxEvent)
        params = [caller.pk, json.dumps(items), atomic, new_id("bat"), batch_event, *who]
        audit_after = AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
        answers, written = {}, {}
        for function in (V1.BATCH, V2.BATCH):
            sid = transaction.savepoint()
            result = _call(function, params)
            answers[function] = _answer(result, items)
            written[function] = _written(items, batch_event, audit_after)
            if function == V1.BATCH:
                transaction.savepoint_rollback(sid)
            else:
                transaction.savepoint_commit(sid)

        assert answers[V2.BATCH] == answers[V1.BATCH]
        assert written[V2.BATCH] == written[V1.BATCH]
        assert written[V2.BATCH]["audit_chained"]
        assert written[V2.BATCH]["stamped_in_item_order"]
        if isinstance(result, ApplicationError):
            outcomes.add("atomic refused")
        else:
            seen |= {row[0] for row in result if row[0]}
            outcomes.add("atomic completed" if atomic else "partial" if any(r[0] for r in result) else "all")

    # The batches exercised what they are meant to (else the test proves little).
    assert outcomes >= {"atomic refused", "partial"}
    assert seen == REFUSAL_CODES, seen
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    call_command("verify_audit_chain", stdout=out)
    assert "ledger OK" in out.getvalue()
    assert "audit chain OK" in out.getvalue()
