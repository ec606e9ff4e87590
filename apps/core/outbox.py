"""The transactional outbox: how every service announces a change.

    with transaction.atomic(durable=True):
        ...change rows, ledger entry, audit row...
        emit_event(event_type="user.registered", aggregate=user, payload={...})

The event row commits or rolls back with the change, and is born not yet handed over
(`published_at` NULL: a trigger sees to it, for the ORM and the engine's SQL functions alike).
Handing it to the broker is off the request path (`OUTBOX_RELAY`, on wherever tasks are not eager):
the INSERT's trigger sends a NOTIFY on channel `paydesk_outbox`, which PostgreSQL delivers when the
change commits, and the relay process (`manage.py outbox_relay`, LISTENing there) claims the
unpublished rows (`FOR NO KEY UPDATE SKIP LOCKED`, so two relays never take the same ones),
publishes them as one `deliver_outbox_events` task per batch of up to OUTBOX_RELAY_BATCH_SIZE
events (never splitting a change, each change's events in the order it wrote them) and marks
the batch published in the same transaction (one UPDATE). A relay that dies between its publish
and its commit leaves the rows unpublished: the next pass publishes them again (at least once).
With the relay off (eager tasks: `make run`, the tests), the change's events are handed over as
one task right after commit, as before. Whatever is still undelivered after
OUTBOX_REDELIVER_AFTER_SECONDS (the relay down, the broker down, a lost task) the periodic
`outbox_sweep` hands over again. Delivery runs each consumer
registered for the event type at most once per event: a `ConsumedEvent` row is inserted in the
consumer's own transaction, so a redelivered event finds the row and skips, and two workers racing
on the same event are serialised by its unique index. A task's events are delivered as a batch
(`deliver_events`): each consumer gets all of them in one transaction (one INSERT of their
`ConsumedEvent` rows), and one registered with `batch_consumer` works on them together.

A consumer whose work commits in transactions of its own (a payment step's durable one) is
registered with `owns_transactions=True`: it runs outside any transaction and is recorded as
consumed once it has returned, so it runs at least once and must be idempotent.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from apps.core.commits import unflushed_commit
from apps.core.correlation import get_correlation_id
from apps.core.deferred import enqueue
from apps.core.models import ConsumedEvent, OutboxEvent

logger = logging.getLogger(__name__)

Consumer = Callable[[OutboxEvent], None]
_consumers: dict[str, dict[str, Consumer]] = defaultdict(dict)
_owning_transactions: set[str] = set()
_conditions: dict[str, Callable[[], bool]] = {}
ALL_EVENTS = "*"


def consumer(
    *event_types: str,
    name: str | None = None,
    owns_transactions: bool = False,
    when: Callable[[], bool] | None = None,
) -> Callable[[Consumer], Consumer]:
    """Registers a function to run once for each delivered event of the given types ("*": all);
    with `owns_transactions`, at least once, outside any transaction (see the module docstring).
    With `when`, only while it answers True (a sink that is configured or not): an event delivered
    meanwhile is not that consumer's, and one that no consumer wants is never handed to a worker
    (the relay marks it delivered as it claims it)."""

    def register(func: Consumer) -> Consumer:
        key = name or f"{func.__module__}.{func.__qualname__}"
        for event_type in event_types:
            _consumers[event_type][key] = func
        if owns_transactions:
            _owning_transactions.add(key)
        if when is not None:
            _conditions[key] = when
        return func

    return register


def consumers_for(event_type: str) -> dict[str, Consumer]:
    registered = {**_consumers.get(ALL_EVENTS, {}), **_consumers.get(event_type, {})}
    return {key: func for key, func in registered.items() if key not in _conditions or _conditions[key]()}


def emit_event(*, event_type: str, aggregate: models.Model, payload: dict[str, Any]) -> OutboxEvent:
    """Writes the event inside the caller's transaction; it is published only if that commits."""
    return emit_events(events=[(event_type, aggregate, payload)])[0]


def emit_events(
    *,
    events: Sequence[tuple[str, models.Model, dict[str, Any]]],
    correlation_ids: Sequence[str] | None = None,
) -> list[OutboxEvent]:
    """Writes several events of one change, in order, with one INSERT (like `emit_event` each).

    Each carries the current correlation id, or its own of `correlation_ids` when given (a worker
    recording a batch that spans several changes: each event keeps the id of the change it is about).
    The rows are written not yet handed over; whoever hands them to the broker marks them (the
    relay, one UPDATE per batch; with the relay off, the hand-off right after commit).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("emit_event must run inside the transaction of the change it announces")
    now, current = timezone.now(), get_correlation_id() or ""
    ids = list(correlation_ids) if correlation_ids is not None else [current] * len(events)
    if len(ids) != len(events):
        raise ValueError("emit_events: one correlation id per event")
    rows = [
        OutboxEvent(
            event_type=event_type,
            aggregate_type=aggregate._meta.model_name or "",
            aggregate_id=str(aggregate.pk),
            payload=payload,
            correlation_id=correlation_id or current,
            created_at=now,
        )
        for (event_type, aggregate, payload), correlation_id in zip(events, ids, strict=True)
    ]
    OutboxEvent.objects.bulk_create(rows)
    hand_over_on_commit([row.id for row in rows])
    return rows


def relay_enabled() -> bool:
    """Whether the relay process hands events over (OUTBOX_RELAY), not the request after commit.
    OUTBOX_RELAY is off by default with eager tasks (`make run`, the tests): the on-commit hand-off
    runs the delivery inline, with no broker to relay to."""
    return bool(settings.OUTBOX_RELAY)


def hand_over_on_commit(event_ids: list[str]) -> None:
    """Hands events written in the current transaction (here, or by an engine function in SQL) to
    the broker once it commits: nothing to do with the relay on, whom the commit's NOTIFY wakes."""
    if relay_enabled():
        return
    transaction.on_commit(lambda: _hand_over(event_ids))


def publish_event(*, event_id: str) -> bool:
    """Hands one event to the broker (again). A failure is logged and left to the sweep, never raised."""
    return publish_events(event_ids=[event_id])


def publish_events(*, event_ids: list[str]) -> bool:
    """Hands events to the broker (again) as one task. A failure is logged and left to the sweep."""
    return _hand_over(event_ids)


def _hand_over(event_ids: list[str]) -> bool:
    """Publishes the events as one task, which delivers them in order, and records the attempt
    (one UPDATE): published now, or, the broker down or refusing, still unpublished for the sweep."""
    from apps.core.tasks import deliver_outbox_events

    published = enqueue(deliver_outbox_events, event_ids, fallback="the sweep")
    # Bookkeeping, not waiting for the WAL flush: lost in a PostgreSQL crash, the sweep re-sends.
    with unflushed_commit():
        OutboxEvent.objects.filter(pk__in=event_ids).update(
            publish_attempts=models.F("publish_attempts") + 1,
            published_at=timezone.now() if published else None,
        )
    return published


# --- the relay (`manage.py outbox_relay`) ---------------------------------------------------------

OUTBOX_CHANNEL = "paydesk_outbox"


@dataclass(frozen=True)
class RelayBatch:
    """One pass of the relay: the events it claimed, in order, and whether the broker took them."""

    event_ids: list[str]
    published: bool


def claim_unpublished(*, limit: int) -> list[tuple[str, str]]:
    """Locks and returns, in the order they were written, the next committed events nobody has
    handed over, as (id, event type): whole changes, as many as fit in `limit` events (at least one
    change, however big).

    Runs in the caller's transaction, which holds the rows until it ends: `SKIP LOCKED` makes a
    second relay take the next rows instead of the same ones (or waiting), and `NO KEY UPDATE`
    lets a worker already delivering them insert its `ConsumedEvent` rows meanwhile. The events of
    one change share the id of the transaction that wrote them (`xmin`).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("claim_unpublished must run inside the relay's transaction")
    table = connection.ops.quote_name(OutboxEvent._meta.db_table)
    pending = f"FROM {table} WHERE published_at IS NULL AND delivered_at IS NULL"
    lock = "ORDER BY relay_seq FOR NO KEY UPDATE SKIP LOCKED"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, event_type, xmin::text {pending} {lock} LIMIT %s", [limit])
        rows = cursor.fetchall()
        if len(rows) == limit:
            # The last changes may have events beyond the limit: all of theirs, to cut between changes.
            cursor.execute(
                f"SELECT id, event_type, xmin::text {pending} AND xmin = ANY(%s::xid[]) {lock}",
                [sorted({change for _, _, change in rows})],
            )
            rows = cursor.fetchall()
    changes: dict[str, list[tuple[str, str]]] = {}
    for event_id, event_type, change in rows:
        changes.setdefault(change, []).append((event_id, event_type))
    batch: list[tuple[str, str]] = []
    for events in changes.values():  # in the order of their first event
        if batch and len(batch) + len(events) > limit:
            break
        batch.extend(events)
    return batch


def relay_batch(*, batch_size: int, dry_run: bool = False) -> RelayBatch:
    """Claims the next batch, publishes it as one task and marks it published, in one transaction;
    if the broker refuses, or on a dry run, nothing is marked (the rows stay for the next pass).

    Events that no consumer wants now (`consumers_for`: none registered, or none whose `when`
    holds) are not handed to a worker, which would only mark them delivered: the same UPDATE marks
    them published and delivered.
    """
    from apps.core.tasks import deliver_outbox_events

    with transaction.atomic(durable=True):
        claimed = claim_unpublished(limit=batch_size)
        event_ids = [event_id for event_id, _ in claimed]
        if not event_ids or dry_run:
            transaction.set_rollback(True)
            return RelayBatch(event_ids, published=False)
        wanted = {event_id for event_id, event_type in claimed if consumers_for(event_type)}
        handed = [event_id for event_id in event_ids if event_id in wanted]
        if handed and not enqueue(deliver_outbox_events, handed, fallback="the next relay pass or the sweep"):
            transaction.set_rollback(True)
            return RelayBatch(event_ids, published=False)
        # Bookkeeping: lost in a PostgreSQL crash, the batch is only published again (at least once).
        # (SQL of its own: the ORM's compilation of this UPDATE cost more than the rest of the pass.)
        table = connection.ops.quote_name(OutboxEvent._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            # (the handed ones' delivery is the worker's to mark)
            marks = (
                "SET publish_attempts = publish_attempts + 1, published_at = %(now)s, "
                "delivered_at = CASE WHEN id = ANY(%(handed)s) THEN delivered_at ELSE %(now)s END"
            )
            cursor.execute(
                f"UPDATE {table} {marks} WHERE id = ANY(%(ids)s)",
                {"now": timezone.now(), "handed": handed, "ids": event_ids},
            )
    return RelayBatch(event_ids, published=True)


def count_unpublished() -> int:
    return OutboxEvent.objects.filter(published_at__isnull=True, delivered_at__isnull=True).count()


def deliver_event(*, event_id: str) -> list[str]:
    """Runs every consumer of the event that has not yet run; returns the names of those that failed."""
    return deliver_events(event_ids=[event_id]).get(event_id, [])


def deliver_events(*, event_ids: Sequence[str]) -> dict[str, list[str]]:
    """Runs every consumer of each event that has not yet run on it, a batch at a time; returns,
    for each event with a failed consumer, the names of those that failed (in the events' order).

    One transaction for the batch: each consumer gets all of its events of the batch at once, in
    their order, in a savepoint that also records them consumed with one INSERT (an event it
    already consumed is left out, as `deliver_event` skips it); a batch consumer (`batch_consumer`)
    works on them together. If its batch fails, the savepoint rolls back and the consumer runs
    again event by event, each in a savepoint of its own, so one bad event fails alone. The events
    done are marked delivered in the same transaction. A consumer that owns its transactions runs
    afterwards, event by event, outside it.
    """
    order = {event_id: index for index, event_id in enumerate(event_ids)}
    events = sorted(
        OutboxEvent.objects.filter(pk__in=list(order), delivered_at__isnull=True), key=lambda e: order[e.pk]
    )
    work: dict[str, list[OutboxEvent]] = {}
    functions: dict[str, Consumer] = {}
    for event in events:
        for key, func in consumers_for(event.event_type).items():
            work.setdefault(key, []).append(event)
            functions[key] = func
    failed: dict[str, list[str]] = {}
    owning = [key for key in work if key in _owning_transactions]
    after_owners = {event.pk for key in owning for event in work[key]}
    if len(owning) < len(work):
        # One transaction for the batch: every consumer's work and records (each consumer in a
        # savepoint of its own), and the events whose consumers have all run marked delivered.
        with transaction.atomic():
            for key, batch in work.items():
                if key not in _owning_transactions:
                    _consume_batch(batch, key, functions[key], failed)
            _mark_delivered([e.pk for e in events if e.pk not in failed and e.pk not in after_owners])
    else:
        after_owners = {event.pk for event in events}  # no consumer's work to commit with
    for key in owning:
        for event in work[key]:
            try:
                _consume_at_least_once(event, key, functions[key])
            except Exception:
                logger.exception("consumer %s failed on event %s", key, event.pk)
                failed.setdefault(event.pk, []).append(key)
    delivered = [event.pk for event in events if event.pk in after_owners and event.pk not in failed]
    if delivered:
        # Bookkeeping for the sweep: lost in a PostgreSQL crash, the events are delivered again and
        # every consumer skips them (their ConsumedEvent rows committed with the consumers' work).
        with unflushed_commit():
            _mark_delivered(delivered)
    return {event.pk: failed[event.pk] for event in events if event.pk in failed}


def _mark_delivered(event_ids: list[str]) -> None:
    if event_ids:
        OutboxEvent.objects.filter(pk__in=event_ids, delivered_at__isnull=True).update(
            delivered_at=timezone.now()
        )


def _consume_batch(batch: list[OutboxEvent], key: str, func: Consumer, failed: dict[str, list[str]]) -> None:
    """Runs one consumer on its events of the batch (see `deliver_events`), noting failures."""
    try:
        for event_id in _consume_batch_once(batch, key, func):
            failed.setdefault(event_id, []).append(key)
        return
    except Exception:
        if len(batch) == 1:
            logger.exception("consumer %s failed on event %s", key, batch[0].pk)
            failed.setdefault(batch[0].pk, []).append(key)
            return
        logger.warning(
            "consumer %s failed on a batch of %d events: one by one", key, len(batch), exc_info=True
        )
    for event in batch:
        try:
            _consume_once(event, key, func)
        except Exception:
            logger.exception("consumer %s failed on event %s", key, event.pk)
            failed.setdefault(event.pk, []).append(key)


BatchConsumer = Callable[[list[OutboxEvent]], None]
_batch_consumers: dict[str, BatchConsumer] = {}


def batch_consumer(
    *event_types: str, name: str, when: Callable[[], bool] | None = None
) -> Callable[[BatchConsumer], BatchConsumer]:
    """Registers a function that is given the events of a delivery together (a list, in order),
    at most once for each event, like a `consumer` (which it also is, given one event at a time)."""

    def register(func: BatchConsumer) -> BatchConsumer:
        _batch_consumers[name] = func
        consumer(*event_types, name=name, when=when)(lambda event: func([event]))
        return func

    return register


def _consume_batch_once(events: list[OutboxEvent], key: str, func: Consumer) -> list[str]:
    """The consumer's work on the events and the records that it ran commit together, or neither
    does; events it already consumed (a redelivery, a racing worker) are left out. A batch
    consumer that fails raises (the batch rolls back); a consumer of one event at a time runs each
    in a savepoint, and an event it fails on is left unconsumed: returns their ids."""
    with transaction.atomic():
        with transaction.get_connection().cursor() as cursor:
            # one INSERT for the batch; a racing worker's rows make it wait, then skip those events
            cursor.execute(
                f"INSERT INTO {ConsumedEvent._meta.db_table} (event_id, consumer, consumed_at) "
                "SELECT unnest(%s::varchar[]), %s, %s ON CONFLICT DO NOTHING RETURNING event_id",
                [[event.pk for event in events], key, timezone.now()],
            )
            fresh = {row[0] for row in cursor.fetchall()}
        todo = [event for event in events if event.pk in fresh]
        if key in _batch_consumers:
            if todo:
                _batch_consumers[key](todo)
            return []
        failed = []
        for event in todo:
            try:
                with transaction.atomic():
                    func(event)
            except Exception:
                logger.exception("consumer %s failed on event %s", key, event.pk)
                failed.append(event.pk)
        if failed:
            ConsumedEvent.objects.filter(event_id__in=failed, consumer=key).delete()
        return failed


def _consume_once(event: OutboxEvent, key: str, func: Consumer) -> None:
    """The consumer's work and the record that it ran commit together, or neither does."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                ConsumedEvent.objects.create(event=event, consumer=key)
        except IntegrityError:
            return  # already consumed (a redelivery, or another worker got there first)
        func(event)


def _consume_at_least_once(event: OutboxEvent, key: str, func: Consumer) -> None:
    """The consumer commits its own work; it is recorded as having run only once it returned."""
    if ConsumedEvent.objects.filter(event=event, consumer=key).exists():
        return
    func(event)
    ConsumedEvent.objects.bulk_create([ConsumedEvent(event=event, consumer=key)], ignore_conflicts=True)


def undelivered_events(*, older_than: timedelta | None = None, limit: int = 500) -> list[str]:
    """Ids of events not yet delivered whose last hand-off is older than the redelivery delay."""
    delay = (
        older_than if older_than is not None else timedelta(seconds=settings.OUTBOX_REDELIVER_AFTER_SECONDS)
    )
    cutoff = timezone.now() - delay
    stale = models.Q(published_at__isnull=True, created_at__lte=cutoff) | models.Q(published_at__lte=cutoff)
    return list(
        OutboxEvent.objects.filter(stale, delivered_at__isnull=True)
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )


SWEEP_BATCH = 50


def sweep_outbox(*, older_than: timedelta | None = None) -> int:
    """Re-publishes what is left undelivered, oldest first, in tasks of up to SWEEP_BATCH events;
    returns how many events were handed over."""
    event_ids = undelivered_events(older_than=older_than)
    batches = [event_ids[start : start + SWEEP_BATCH] for start in range(0, len(event_ids), SWEEP_BATCH)]
    return sum(len(batch) for batch in batches if publish_events(event_ids=batch))
