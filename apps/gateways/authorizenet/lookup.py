"""Finding a transaction Paydesk sent without knowing its transId (its answer was lost), by the
reference it carried as its invoice number.

Authorize.Net has no search by invoice number; its lists do carry it. The unsettled transactions
(newest first, a page of 1000 at a time) are read first, then those awaiting approval (held by the
Fraud Detection Suite), then the batches settled over the last AUTHORIZENET_SETTLED_LOOKBACK_DAYS
(settlement runs once a day, so a charge answered late may already be in one). One reference may
name several transactions (a processor error, then the retry that went through): one that moved
or holds money wins over one that failed, so a charge is never taken for a decline.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.gateways.authorizenet import codes, messages
from apps.gateways.authorizenet.answers import refusal, text
from apps.gateways.authorizenet.wire import AnetClient

FAILED = codes.FAILED_STATUSES


def find_by_reference(client: AnetClient, reference: str) -> str | None:
    """The transId of the transaction sent under `reference`, or None if Authorize.Net has none."""
    found: list[tuple[str, str]] = []
    for summaries in _unsettled_pages(client, held_only=False):
        found += _matching(summaries, reference)
    if not _best(found):
        for summaries in _unsettled_pages(client, held_only=True):
            found += _matching(summaries, reference)
    if not _best(found):
        for summaries in _settled_pages(client):
            found += _matching(summaries, reference)
            if _best(found):
                break
    return _best(found) or (found[0][0] if found else None)


def _best(found: list[tuple[str, str]]) -> str | None:
    """The first transaction found that did not fail (None: none yet)."""
    return next((trans_id for trans_id, status in found if status not in FAILED), None)


def _matching(summaries: list[Any], reference: str) -> list[tuple[str, str]]:
    return [
        (text(summary.transId), text(summary.transactionStatus))
        for summary in summaries
        if text(summary.invoiceNumber) == reference
    ]


def _listed(client: AnetClient, request: Any, element: str) -> Any:
    response = client.send(request, element, moves_money=False)
    _, notes = _result(response)
    if notes == codes.NO_RECORDS:
        return None
    problem = refusal(response)
    if problem is not None:
        raise problem
    return response


def _result(response: Any) -> tuple[str, str]:
    found = getattr(response, "messages", None)
    if found is None or not found.message:
        return "", ""
    return text(found.resultCode), text(found.message[0].code)


def _unsettled_pages(client: AnetClient, *, held_only: bool) -> Iterator[list[Any]]:
    page = 1
    while True:
        response = _listed(
            client, messages.unsettled(page=page, held_only=held_only), "getUnsettledTransactionListRequest"
        )
        summaries = (
            list(response.transactions.transaction) if response is not None and response.transactions else []
        )
        yield summaries
        if len(summaries) < messages.UNSETTLED_PAGE:
            return
        page += 1


def _settled_pages(client: AnetClient) -> Iterator[list[Any]]:
    now = timezone.now()
    first = now - timedelta(days=max(settings.AUTHORIZENET_SETTLED_LOOKBACK_DAYS, 0))
    response = _listed(client, messages.settled_batches(first=first, last=now), "getSettledBatchListRequest")
    batches = list(response.batchList.batch) if response is not None and response.batchList else []
    for batch in reversed(batches):  # newest first
        page = 1
        while True:
            listed = _listed(
                client,
                messages.batch_transactions(batch_id=text(batch.batchId), page=page),
                "getTransactionListRequest",
            )
            summaries = (
                list(listed.transactions.transaction) if listed is not None and listed.transactions else []
            )
            yield summaries
            if len(summaries) < messages.UNSETTLED_PAGE:
                break
            page += 1
