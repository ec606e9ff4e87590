from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.chain import chain_hash, genesis_hash
from apps.audit.models import AuditLog

PROGRESS_EVERY = 10_000
# Enough to point at where the damage starts; the count says how much there is.
PROBLEMS_SHOWN = 10


class Command(BaseCommand):
    help = (
        "Proves the audit trail is intact. Walks every AuditLog row in id order, recomputes its hash "
        "(so a row altered behind the application's back shows as a hash mismatch) and checks that "
        "its prev_hash is the hash of the previous row of its chain, or the chain's genesis hash for "
        "its first row (so removed rows show as a chain break between the two ids around them). "
        "The trail is several independent chains; each is checked. Memory use is constant; "
        "progress goes to stderr every "
        f"{PROGRESS_EVERY:,} rows. Exits 0 with 'audit chain OK: N rows', or fails naming the first "
        "rows that are wrong."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=2000,
            help="Rows fetched from the database at a time (default: 2000).",
        )

    def handle(self, *args, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        total = AuditLog.objects.count()
        problems: list[str] = []
        problem_count = 0
        checked = 0
        # The last row seen of each chain: rows of all chains interleave in id order.
        previous: dict[int, AuditLog] = {}
        for row in AuditLog.objects.order_by("id").iterator(chunk_size=batch_size):
            for problem in _problems(row, previous.get(row.chain)):
                problem_count += 1
                if len(problems) < PROBLEMS_SHOWN:
                    problems.append(problem)
            previous[row.chain] = row
            checked += 1
            if checked % PROGRESS_EVERY == 0:
                self.stderr.write(f"checked {checked:,} of {total:,} rows")
        if problems:
            more = f"; and {problem_count - len(problems)} more" if problem_count > len(problems) else ""
            raise CommandError(
                f"audit chain BROKEN: {problem_count} problem(s) in {checked} rows: "
                + "; ".join(problems)
                + more
            )
        self.stdout.write(f"audit chain OK: {checked} rows")


def _problems(row: AuditLog, previous: AuditLog | None) -> list[str]:
    found = []
    if previous is None:
        if row.prev_hash != genesis_hash(row.chain):
            found.append(
                f"chain break before id {row.id}: the first row of chain {row.chain} does not start "
                "the chain (earlier row(s) missing)"
            )
    elif row.prev_hash != previous.hash:
        found.append(
            f"chain break between ids {previous.id} and {row.id}: row(s) missing "
            f"(or id {previous.id}'s hash was rewritten)"
        )
    if chain_hash(row) != row.hash:
        found.append(f"hash mismatch at id {row.id}: row altered")
    return found
