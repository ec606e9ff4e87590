"""`python manage.py verify_ledger`: prove the books, or name what is wrong and exit non-zero.

The cached balances it compares with the postings (a wallet's `balance`) are the ones their apps
register in `apps.ledger.balance_checks`: the ledger imports none of them.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from apps.ledger.balance_checks import (
    CachedBalanceCheck,
    SystemBalanceCheck,
    cached_balance_checks,
    system_balance_checks,
)
from apps.ledger.selectors import (
    ledger_account_balances,
    ledger_counts,
    ledger_currency_totals,
    ledger_entries_without_postings,
    ledger_postings_in_foreign_currency,
    ledger_system_account_balances,
    ledger_unbalanced_entries,
)

SHOWN_IN_SUMMARY = 5


class Command(BaseCommand):
    help = (
        "Verifies the double-entry ledger: every wallet's cached balance equals the sum of its "
        "account's postings, every journal entry balances per currency, postings are in their "
        "account's currency, each currency's book sums to zero, and the system accounts other "
        "apps register (payouts in transit) hold what their open objects add up to. Reads one "
        "consistent snapshot, so it can run against a live database. Exits 1 naming the wrong wallets/entries."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=5000,
            help="Wallets compared per query (default 5000); progress is printed after each batch.",
        )

    def handle(self, *args, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        # Inside a caller's transaction (tests) the snapshot is already whatever the caller sees.
        own_snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
        with transaction.atomic():
            if own_snapshot:
                # One snapshot for every query below: transfers committing meanwhile cannot make
                # a balance and its postings disagree.
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            problems: list[str] = []
            checked: list[str] = []
            for check in cached_balance_checks():
                found, count = self._check_cached(check, batch_size)
                problems += found
                checked.append(f"{count} {check.plural}")
            for system_check in system_balance_checks():
                problems += self._check_system(system_check)
                checked.append(f"the {system_check.code} account")
            problems += self._check_entries()
            totals = ledger_currency_totals()
            problems += [
                f"the {currency} book sums to {total}, not 0" for currency, total in totals.items() if total
            ]
            counts = ledger_counts()

        if problems:
            for problem in problems:
                self.stderr.write(problem)
            shown = "; ".join(problems[:SHOWN_IN_SUMMARY])
            more = (
                f" (and {len(problems) - SHOWN_IN_SUMMARY} more)" if len(problems) > SHOWN_IN_SUMMARY else ""
            )
            raise CommandError(f"ledger does not verify, {len(problems)} problem(s): {shown}{more}")
        currencies = ", ".join(totals) or "no currency yet"
        self.stdout.write(
            self.style.SUCCESS(
                f"ledger OK: {', '.join(checked) or 'no cached balances'} match their postings, "
                f"{counts['entries']} entries and "
                f"{counts['postings']} postings balance, books sum to zero ({currencies})"
            )
        )

    def _check_cached(self, check: CachedBalanceCheck, batch_size: int) -> tuple[list[str], int]:
        problems: list[str] = []
        total = check.count()
        checked = 0
        last_id = ""
        while True:
            batch = check.batch(last_id, batch_size)
            if not batch:
                break
            derived = ledger_account_balances(account_ids=[account_id for _, account_id, _ in batch])
            problems += [
                f"{check.noun} {holder_id} (account {account_id}) caches balance {cached} but its postings "
                f"sum to {derived[account_id]}"
                for holder_id, account_id, cached in batch
                if derived[account_id] != cached
            ]
            checked += len(batch)
            last_id = batch[-1][0]
            if total > batch_size:
                self.stdout.write(f"checked {checked}/{total} {check.plural}")
        return problems, checked

    def _check_system(self, check: SystemBalanceCheck) -> list[str]:
        """A system account's balance per currency against what its app's open objects add up to."""
        actual = ledger_system_account_balances(code=check.code)
        expected = check.expected()
        return [
            f"the {check.code} account holds {actual.get(currency, 0)} {currency} but the "
            f"{check.description} add up to {expected.get(currency, 0)}"
            for currency in sorted(set(actual) | set(expected))
            if actual.get(currency, 0) != expected.get(currency, 0)
        ]

    def _check_entries(self) -> list[str]:
        problems = [
            f"entry {entry_id} does not balance: its {currency} postings sum to {total}"
            for entry_id, currency, total in ledger_unbalanced_entries()
        ]
        problems += [
            f"entry {entry_id} has {lines} posting(s); an entry needs at least two"
            for entry_id, lines in ledger_entries_without_postings()
        ]
        problems += [
            f"posting {posting.pk} of entry {posting.entry_id} is in {posting.currency}, "
            f"but account {posting.account_id} holds another currency"
            for posting in ledger_postings_in_foreign_currency()
        ]
        return problems
