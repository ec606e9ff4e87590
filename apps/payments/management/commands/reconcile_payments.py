"""manage.py reconcile_payments: settle every payment whose outcome Paydesk does not know."""

from __future__ import annotations

import sys
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from apps.gateways.base import GatewayError
from apps.payments import services
from apps.payments.models import Payment


def progress(done: int, total: int, stream) -> None:
    width = 30
    filled = width * done // total if total else width
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    stream.flush()


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
        stuck = services.payments_stuck(older_than=window)
        waiting = services.payments_to_reconcile(older_than=window)
        if dry_run:
            for refund_id in services.refunds_stuck(older_than=window):
                self.stdout.write(f"would retry pending refund {refund_id}")
            for payment_id in stuck:
                self.stdout.write(f"would move {payment_id} from {self._status(payment_id)} to reconcile")
            for payment_id in waiting:
                self.stdout.write(f"would reconcile {payment_id}")
            self.stdout.write(f"dry run: {len(stuck)} stuck, {len(waiting)} to reconcile; nothing changed")
            return
        for payment_id in stuck:
            before = self._status(payment_id)
            services.payment_mark_reconcile(actor=None, payment_id=payment_id, reason="stuck")
            self.stdout.write(f"{payment_id}: {before} -> reconcile (stuck)")
        todo = services.payments_to_reconcile(older_than=window)
        failures = 0
        changes = []
        for done, payment_id in enumerate(todo, start=1):
            try:
                before, after = services.payment_reconcile(actor=None, payment_id=payment_id)
                changes.append(f"{payment_id}: {before} -> {after}")
            except GatewayError as exc:
                failures += 1
                changes.append(f"{payment_id}: left in reconcile, gateway error {exc.code}")
            progress(done, len(todo), sys.stderr)
        if todo:
            sys.stderr.write("\n")
        for refund_id in services.refunds_stuck(older_than=window):
            refund = services.run_refund(actor=None, refund_id=refund_id)
            changes.append(f"{refund_id}: pending refund retried -> {refund.status}")
        for line in changes:
            self.stdout.write(line)
        self.stdout.write(f"reconciled {len(todo) - failures} of {len(todo)} payment(s)")
        if failures:
            raise CommandError(f"{failures} payment(s) could not be reconciled: the gateway did not answer")

    @staticmethod
    def _status(payment_id: str) -> str:
        return Payment.objects.values_list("status", flat=True).get(pk=payment_id)
