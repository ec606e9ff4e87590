"""Reads of what gateways keep: the attempts made for one subject (a payment or a deposit), and what
Paydesk sent to Authorize.Net under a reference."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.gateways.models import AuthorizeNetSubmission, GatewayAttempt


def gateway_attempts_for(*, subject_id: str) -> QuerySet[GatewayAttempt]:
    """Every gateway call made for `subject_id` (a payment's `pay_…`, a deposit's `txn_…`), oldest first."""
    return GatewayAttempt.objects.filter(subject_id=subject_id).order_by("created_at", "id")


def authorizenet_sent_under(*, reference: str) -> tuple[str, str] | None:
    """(our key, the transaction it was for) of the charge or refund Paydesk sent to Authorize.Net
    under `reference` (its invoiceNumber); None when Paydesk sent nothing under it. The key of a
    charge is its payment's (or deposit's) id; a refund's is the refund's id, and the transaction it
    was for is the original charge's transId."""
    found = (
        AuthorizeNetSubmission.objects.filter(reference=reference).values_list("key", "ref_trans_id").first()
        if reference
        else None
    )
    return (found[0], found[1]) if found else None
