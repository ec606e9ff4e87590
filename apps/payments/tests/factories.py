"""Helpers for payment tests: book totals and funded wallets made through the real services."""

from django.db.models import Sum

from apps.ledger.models import Posting


def sum_of_postings(code: str, currency: str) -> int:
    """The balance of a system account (sum of its postings); 0 when it has none."""
    total = Posting.objects.filter(account__code=code, account__currency=currency).aggregate(s=Sum("amount"))[
        "s"
    ]
    return total or 0
