"""manage.py reconcile_payouts: settle every payout stuck in transit by asking its gateway.

The sibling of `reconcile_payments` and `reconcile_deposits`, for payouts; it runs
`apps.payouts.services.payouts_reconcile` (see apps/payouts/services/reconciling.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.progress import progress_write
from apps.payouts.services import payouts_reconcile


class Command(BaseCommand):
    help = (
        "Settles every payout stuck in_transit (no payout.paid / payout.failed webhook came) by asking "
        "the gateway what it knows of the payout's key: paid, or failed and put back into the wallet, "
        "each once. Prints each change; --dry-run lists what would be looked at, asks nothing and "
        "changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            metavar="SECONDS",
            help="Only payouts in transit and untouched for at least this many seconds "
            "(default: PAYOUT_RECONCILE_AFTER_SECONDS, 3 days).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be reconciled; change nothing."
        )

    def _progress(self, done: int, total: int) -> None:
        progress_write(self.stderr, done, total)
        if done == total:
            self.stderr.write("")

    def handle(self, *args: Any, older_than: int | None, dry_run: bool, **options: Any) -> None:
        if older_than is not None and older_than < 0:
            raise CommandError("--older-than must be zero or more seconds")
        seconds = settings.PAYOUT_RECONCILE_AFTER_SECONDS if older_than is None else older_than
        window = timedelta(seconds=seconds)
        if dry_run:
            report = payouts_reconcile(older_than=window, dry_run=True)
            for check in report.checks:
                self.stdout.write(f"would reconcile {check.payout_id} ({check.before})")
            self.stdout.write(
                f"dry run: {len(report.checks)} payout(s) in transit for over {seconds} s; nothing changed"
            )
            return
        report = payouts_reconcile(older_than=window, progress=self._progress)
        for check in report.checks:
            if check.after == check.before:
                self.stdout.write(f"{check.payout_id}: left {check.before}: {check.note}")
            else:
                self.stdout.write(f"{check.payout_id}: {check.before} -> {check.after}")
        self.stdout.write(f"reconciled {report.settled} of {len(report.checks)} payout(s)")
        if report.problems:
            raise CommandError(
                f"{report.problems} payout(s) could not be reconciled: the gateway did not answer or "
                "contradicts the books (see above)"
            )
