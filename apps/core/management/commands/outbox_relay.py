"""`manage.py outbox_relay`: hands committed outbox events to the broker, off the request path."""

from __future__ import annotations

import argparse
import math
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection, connections

from apps.core import outbox


class _Stop(Exception):
    """SIGTERM/SIGINT: stop after rolling back whatever batch is open (its rows stay unpublished)."""


class Command(BaseCommand):
    help = (
        "The outbox relay: LISTENs on PostgreSQL channel "
        f"'{outbox.OUTBOX_CHANNEL}' (notified by the outbox table's trigger when a change with events "
        "commits) and hands the unpublished events to the broker as one deliver_outbox_events task per "
        "batch, marking each batch published in the same transaction. Rows are claimed with FOR NO "
        "KEY UPDATE SKIP LOCKED, so several relays can run without publishing an event twice. Run it "
        "beside the Celery workers whenever OUTBOX_RELAY is on; the beat's outbox_sweep delivers "
        "what is left when no relay runs. Logs one line per pass; SIGTERM stops it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="Hand over what is unpublished now, then exit (no LISTEN).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Say how many events and tasks there are to hand over, and the first batch; publish "
            "and mark nothing (implies --once).",
        )
        parser.add_argument(
            "--batch-size",
            type=_positive_int,
            default=settings.OUTBOX_RELAY_BATCH_SIZE,
            help="Events per task; a change is never split (default: OUTBOX_RELAY_BATCH_SIZE, "
            f"{settings.OUTBOX_RELAY_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--linger",
            type=_non_negative_float,
            default=settings.OUTBOX_RELAY_LINGER_SECONDS,
            help="Seconds to wait, once woken by a commit, for the commits right behind it, so that "
            "one task carries many changes under load; 0 hands each over at once (default: "
            f"OUTBOX_RELAY_LINGER_SECONDS, {settings.OUTBOX_RELAY_LINGER_SECONDS:g}).",
        )
        parser.add_argument(
            "--heartbeat-file",
            type=Path,
            default=None,
            help="Touch this file after every pass (at least every --poll-interval seconds): a "
            "health check can tell a relay that is stuck from one that is idle.",
        )
        parser.add_argument(
            "--poll-interval",
            type=_positive_float,
            default=settings.OUTBOX_RELAY_POLL_SECONDS,
            help="Seconds between looks for unpublished events when no notification comes, and "
            f"before a retry after the broker refused (default: {settings.OUTBOX_RELAY_POLL_SECONDS}).",
        )

    def handle(
        self,
        *args: Any,
        once: bool,
        dry_run: bool,
        batch_size: int,
        poll_interval: float,
        linger: float,
        heartbeat_file: Path | None,
        **options: Any,
    ) -> None:
        if dry_run:
            self._dry_run(batch_size)
            return
        if once:
            events, tasks, refused = self._drain(batch_size)
            self.stdout.write(f"relay: handed over {events} event(s) in {tasks} task(s)")
            if refused:
                raise CommandError(
                    "the broker refused a batch; what is left waits for the next relay pass or the sweep"
                )
            return
        if not outbox.relay_enabled():
            self.stderr.write(
                "warning: OUTBOX_RELAY is off: requests publish their events themselves; relaying anyway."
            )
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._serve(batch_size, poll_interval, linger, heartbeat_file)
        except _Stop:
            self.stdout.write("relay: stopped")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _serve(
        self, batch_size: int, poll_interval: float, linger: float, heartbeat_file: Path | None
    ) -> None:
        listener = None
        while True:
            try:
                if listener is None or listener.closed:
                    listener = _listen()
                    self.stdout.write(
                        f"relay: listening on channel {outbox.OUTBOX_CHANNEL} (batches of {batch_size})"
                    )
                # Also on start and after every wake-up or timeout: what committed meanwhile.
                events, tasks, refused = self._drain(batch_size)
                if heartbeat_file is not None:
                    heartbeat_file.touch()
                if events:
                    self.stdout.write(f"relay: handed over {events} event(s) in {tasks} task(s)")
                if refused:
                    self.stderr.write(f"relay: the broker refused; retrying in {poll_interval:g} s")
                    time.sleep(poll_interval)
                    continue
                # One notification wakes us; those queued behind it (and those of the linger, which
                # gathers the commits right behind it into the same batches) are the same news.
                woken = any(True for _ in listener.notifies(timeout=poll_interval, stop_after=1))
                if woken and linger:
                    time.sleep(linger)
                for _ in listener.notifies(timeout=0):
                    pass
            except DatabaseError as exc:
                self.stderr.write(f"relay: database unavailable ({exc}); reconnecting in {poll_interval:g} s")
                connections.close_all()
                if listener is not None:
                    listener.close()
                listener = None
                time.sleep(poll_interval)

    def _drain(self, batch_size: int) -> tuple[int, int, bool]:
        """Batches until nothing is unpublished; (events, tasks, whether the broker refused one)."""
        events = tasks = 0
        while True:
            batch = outbox.relay_batch(batch_size=batch_size)
            if not batch.event_ids:
                return events, tasks, False
            if not batch.published:
                return events, tasks, True
            events, tasks = events + len(batch.event_ids), tasks + 1

    def _dry_run(self, batch_size: int) -> None:
        pending = outbox.count_unpublished()
        first = outbox.relay_batch(batch_size=batch_size, dry_run=True)
        self.stdout.write(
            f"relay (dry run): {pending} unpublished event(s), about {math.ceil(pending / batch_size)} "
            f"task(s) of up to {batch_size}; nothing published or marked"
        )
        if first.event_ids:
            self.stdout.write(f"first batch: {', '.join(first.event_ids)}")


def _listen() -> Any:
    """A connection of its own, in autocommit, LISTENing on the outbox channel."""
    connection.ensure_connection()
    listener = connection.get_new_connection(connection.get_connection_params())
    listener.autocommit = True
    listener.execute(f"LISTEN {outbox.OUTBOX_CHANNEL}")
    return listener


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number
