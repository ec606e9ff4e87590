"""manage.py bill_subscriptions: one billing pass, now or as if at another moment."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.core.money import Money
from apps.core.progress import progress_write
from apps.subscriptions import services
from apps.subscriptions.periods import period_bounds
from apps.subscriptions.selectors import subscriptions_due


def parse_moment(value: str) -> datetime:
    """ISO 8601: a timestamp (no timezone means UTC) or a date (its midnight, UTC)."""
    try:
        moment = parse_datetime(value)
        if moment is None and (day := parse_date(value)) is not None:
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"--as-of must be an ISO 8601 timestamp or date, not {value!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Progress:
    """`[#####.....] 12/40` on stderr; the total grows if a pass finds more work than it expected."""

    def __init__(self, total: int, stream: OutputWrapper) -> None:
        self.total, self.done, self.stream = total, 0, stream

    def __call__(self, subscription_id: str, outcome: services.Outcome) -> None:
        self.done += 1
        self.total = max(self.total, self.done)
        progress_write(self.stream, self.done, self.total)

    def finish(self) -> None:
        if self.done:
            self.stream.write("")


class Command(BaseCommand):
    help = (
        "Runs one billing pass: charges every subscription due at that moment (a trial ending, a "
        "period renewing, a dunning retry) and ends those canceled at period end. Safe to run twice "
        "or beside the Celery workers: each period is charged once. Progress on stderr, a summary on "
        "stdout; --dry-run lists what is due and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of",
            metavar="ISO-8601",
            help="Bill as if it were this moment (default: now). A date means its midnight UTC.",
        )
        parser.add_argument("--dry-run", action="store_true", help="List what is due; change nothing.")

    def handle(self, *args, as_of: str | None, dry_run: bool, **options):
        now = parse_moment(as_of) if as_of else timezone.now()
        due = subscriptions_due(now=now)
        if dry_run:
            return self._dry_run(due, now)
        progress = Progress(due.count(), self.stderr)
        summary = services.subscriptions_bill_due(now=now, on_progress=progress)
        progress.finish()
        counts = summary.as_dict()
        skipped = counts["skipped"] + counts["pending"] + counts["error"]
        self.stdout.write(
            f"billing pass as of {now.isoformat()}: charged {counts['charged']}, failed {counts['failed']}, "
            f"skipped {skipped} (ended at period end {counts['ended']}, payment still in flight "
            f"{counts['pending']}, errors {counts['error']})"
        )
        if counts["error"]:
            raise CommandError(
                f"{counts['error']} subscription(s) could not be billed (see the log); "
                "they are retried once their claim expires"
            )

    def _dry_run(self, due, now: datetime) -> None:
        count = 0
        for subscription in due.order_by("due_at", "id"):
            count += 1
            if subscription.cancel_at_period_end:
                self.stdout.write(f"would end {subscription.pk} (canceled at period end)")
                continue
            start, end = period_bounds(
                anchor=subscription.billing_anchor,
                cycle=subscription.billing_cycle,
                index=subscription.next_period_index,
            )
            retry = f", retry {subscription.dunning_attempt}" if subscription.dunning_attempt else ""
            self.stdout.write(
                f"would charge {subscription.pk} {Money(subscription.amount, subscription.currency)} "
                f"for {start:%Y-%m-%d} to {end:%Y-%m-%d}{retry}"
            )
        self.stdout.write(f"dry run as of {now.isoformat()}: {count} subscription(s) due; nothing changed")
