"""The ledger's metrics, registered with core's (`apps.core.metrics`) from `LedgerConfig.ready()`:
journal entries posted, by kind (append-only, so a counter), read at scrape time."""

from __future__ import annotations

from django.db.models import Count

from apps.core import metrics
from apps.core.metrics import Sample
from apps.ledger.models import JournalEntry

FAMILIES: dict[str, metrics.FamilySpec] = {
    "paydesk_ledger_entries": ("counter", "Journal entries posted, by kind (append-only).", ["kind"]),
}


def ledger_samples() -> list[Sample]:
    rows = JournalEntry.objects.order_by().values("kind").annotate(n=Count("pk"))
    return [("paydesk_ledger_entries", {"kind": row["kind"]}, row["n"]) for row in rows]


def connect() -> None:
    metrics.register_state_collector(ledger_samples, families=FAMILIES)
