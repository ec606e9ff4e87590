"""Which commits wait for the WAL flush: every money transaction does; the bookkeeping that only
records durable work as done (a stored idempotent response after a gateway call, an event's
delivery) does not. A transfer's stored response is part of its money transaction."""

import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.core import outbox
from apps.core.models import OutboxEvent
from apps.gateways import GatewayResult
from apps.wallets.services import wallet_create, wallet_deposit_settle, wallet_deposit_start

pytestmark = pytest.mark.django_db(transaction=True)

UNFLUSHED = "SET LOCAL synchronous_commit TO OFF"


def _transactions(captured: CaptureQueriesContext) -> list[list[str]]:
    """The statements between each BEGIN and its COMMIT, as Django logs them."""
    found: list[list[str]] = []
    current: list[str] | None = None
    for sql in (query["sql"] for query in captured.captured_queries):
        if sql == "BEGIN":
            current = []
        elif sql == "COMMIT" and current is not None:
            found.append(current)
            current = None
        elif current is not None:
            current.append(sql)
    return found


def test_a_transfer_commits_its_claim_money_and_stored_response_in_one_flushed_transaction(
    auth_client, user, other_user
):
    source = wallet_create(actor=user, user=user, currency="USD")
    txn = wallet_deposit_start(actor=user, user=user, wallet_id=source.pk, amount=1000)
    wallet_deposit_settle(actor=user, transaction_id=txn.pk, result=GatewayResult(status="captured"))
    destination = wallet_create(actor=other_user, user=other_user, currency="USD")

    with CaptureQueriesContext(connection) as captured:
        response = auth_client.post(
            "/api/v1/transfers",
            {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 5},
            format="json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )

    assert response.status_code == 201
    # What runs after the request (events delivered inline by the test settings' eager Celery)
    # commits on its own; the request itself is the first transaction.
    request, *_ = _transactions(captured)
    assert UNFLUSHED not in request  # the money, the key and the answer are flushed together
    assert request[0].startswith('INSERT INTO "core_idempotencyrecord"')
    assert "FROM wallet_transfer_v2(" in request[1]
    assert request[2].startswith('UPDATE "core_idempotencyrecord"')
    assert len(request) == 3


def test_marking_an_event_delivered_does_not_wait_for_the_flush():
    with transaction.atomic():
        anchor = OutboxEvent.objects.create(event_type="anchor", aggregate_type="x", aggregate_id="1")
        event = outbox.emit_event(event_type="test.unflushed", aggregate=anchor, payload={})
    OutboxEvent.objects.filter(pk=event.pk).update(delivered_at=None)  # as if not yet delivered

    with CaptureQueriesContext(connection) as captured:
        assert outbox.deliver_event(event_id=event.pk) == []

    *_, marking = _transactions(captured)
    assert marking[0] == UNFLUSHED
    assert marking[1].startswith('UPDATE "core_outboxevent" SET "delivered_at"')
    event.refresh_from_db()
    assert event.delivered_at is not None
