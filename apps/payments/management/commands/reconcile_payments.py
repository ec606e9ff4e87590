"""manage.py reconcile_payments: settle every payment whose outcome Paydesk does not know."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from apps.core.progress import progress_write
from apps.payments import services


class Command(BaseCommand):
    help = (
        "Settles every payment in `reconcile` by asking the gateway what happened to it. Payments left "
        "pending/processing with no retry to come are moved to `reconcile` first, so nothing stays in "
        "limbo. Prints each change; --dry-run shows what would be looked at and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=0,
            metavar="SECONDS",
            help="Only payments untouched for at least this many seconds (default 0: all of them, now).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be reconciled; change nothing."
        )

    def handle(self, *args, older_than: int, dry_run: bool, **options):
        if older_than < 0:
            raise CommandError("--older-than must be zero or more seconds")
        window = timedelta(seconds=older_than)
        if dry_run:
            report = services.payments_reconcile_due(older_than=window, dry_run=True)
            for refund_id, _ in report.refunds:
                self.stdout.write(f"would retry pending refund {refund_id}")
            for payment_id, before in report.stuck:
                self.stdout.write(f"would move {payment_id} from {before} to reconcile")
            for payment_id in report.to_reconcile:
                self.stdout.write(f"would reconcile {payment_id}")
            self.stdout.write(
                f"dry run: {len(report.stuck)} stuck, {len(report.to_reconcile)} to reconcile; nothing changed"
            )
            return
        report = services.payments_reconcile_due(
            older_than=window, on_progress=lambda done, total: progress_write(self.stderr, done, total)
        )
        total = len(report.reconciled) + len(report.gateway_errors)
        if total:
            self.stderr.write("")
        for payment_id, before in report.stuck:
            self.stdout.write(f"{payment_id}: {before} -> reconcile (stuck)")
        for payment_id, before, after in report.reconciled:
            self.stdout.write(f"{payment_id}: {before} -> {after}")
        for payment_id, code in report.gateway_errors:
            self.stdout.write(f"{payment_id}: left in reconcile, gateway error {code}")
        for refund_id, status in report.refunds:
            self.stdout.write(f"{refund_id}: pending refund retried -> {status}")
        self.stdout.write(f"reconciled {len(report.reconciled)} of {total} payment(s)")
        if report.gateway_errors:
            raise CommandError(
                f"{len(report.gateway_errors)} payment(s) could not be reconciled: the gateway did not answer"
            )
