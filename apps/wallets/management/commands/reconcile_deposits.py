"""manage.py reconcile_deposits: settle every deposit whose outcome Paydesk does not know.

The sibling of `reconcile_payments`, for wallet deposits; both the command and the beat task
(`apps.wallets.tasks.reconcile_deposits`) run `apps.wallets.deposits.reconcile_deposits`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.progress import progress_write
from apps.wallets.deposits import reconcile_deposits


class Command(BaseCommand):
    help = (
        "Settles every deposit still pending with nobody coming back for it (a lost gateway answer, "
        "an answer that could not be written, a retry lost with the broker) by asking the gateway "
        "what it knows of the deposit's key; each is settled once. Prints each change; --dry-run "
        "lists what would be looked at and changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=0,
            metavar="SECONDS",
            help="Only deposits untouched for at least this many seconds (default 0: all of them, now).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be reconciled; change nothing."
        )

    def _progress(self, done: int, total: int) -> None:
        progress_write(self.stderr, done, total)
        if done == total:
            self.stderr.write("")

    def handle(self, *args: Any, older_than: int, dry_run: bool, **options: Any) -> None:
        if older_than < 0:
            raise CommandError("--older-than must be zero or more seconds")
        window = timedelta(seconds=older_than)
        if dry_run:
            report = reconcile_deposits(older_than=window, dry_run=True)
            for transaction_id, _, _ in report.changes:
                self.stdout.write(f"would reconcile {transaction_id}")
            self.stdout.write(f"dry run: {len(report.changes)} deposit(s) to reconcile; nothing changed")
            return
        report = reconcile_deposits(older_than=window, progress=self._progress)
        for transaction_id, before, after in report.changes:
            if after == before:
                self.stdout.write(f"{transaction_id}: left {before}, the gateway did not say what happened")
            else:
                self.stdout.write(f"{transaction_id}: {before} -> {after}")
        self.stdout.write(f"reconciled {report.settled} of {len(report.changes)} deposit(s)")
        if report.left_pending:
            raise CommandError(
                f"{report.left_pending} deposit(s) could not be reconciled: the gateway did not answer"
            )
