"""Notifications and the raw-log sink through real processes.

A real `celery -A config worker` on RabbitMQ, a local SMTP sink (aiosmtpd, in this process) that the
worker's Django SMTP backend talks to over TCP, and a MongoDB wire-protocol server (nx-27017) that
the worker's pymongo writes to. The test process plays the web side: services and API requests
whose events are published to the broker after commit.
"""

import time

import pytest

from apps.accounts.tests.factories import UserFactory
from apps.audit import mongo
from apps.audit.models import AuditLog
from apps.audit.rawlog import raw_log_find
from apps.core.dead_letters import dead_letter_replay
from apps.core.models import ConsumedEvent, DeadLetter, OutboxEvent
from apps.core.outbox import publish_event
from apps.notifications.models import Notification
from apps.notifications.services import message_id
from apps.wallets.services import wallet_create, wallet_deposit, wallet_transfer
from tests.fakes.mongo_server import MongoServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def mongo_server(tmp_path, settings):
    with MongoServer(tmp_path / "mongo") as server:
        settings.MONGO_URL = server.url
        yield server
        mongo.close_clients()


@pytest.fixture
def worker_env(smtp_sink, mongo_server):
    """The worker sends through the sink and writes raw logs to the MongoDB server; a write that
    fails is tried twice, at once, then dead-lettered (short, so an outage test is quick)."""
    return {
        "TEST_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_URL": smtp_sink.url,
        "MONGO_URL": mongo_server.url,
        "MONGO_TIMEOUT_MS": "500",
        "RAW_LOG_MAX_ATTEMPTS": "2",
        "RAW_LOG_RETRY_BASE_SECONDS": "0",
    }


def emails_about(sink, notifications):
    """The messages the sink received for these notification rows (by their Message-ID)."""
    wanted = {message_id(n.pk) for n in notifications}
    return [m for m in sink.received() if m["Message-ID"] in wanted]


def test_a_transfer_emails_each_party_once_even_when_its_event_is_delivered_again(
    celery_worker_process, smtp_sink, wait_for
):
    # given: Ada with money, Bob with a wallet
    ada = UserFactory(email="ada@example.com", full_name="Ada Lovelace")
    bob = UserFactory(email="bob@example.com", full_name="Bob Babbage")
    source = wallet_create(actor=ada, user=ada, currency="USD")
    destination = wallet_create(actor=bob, user=bob, currency="USD")
    wallet_deposit(actor=ada, user=ada, wallet_id=source.pk, amount=10_000, payment_method="tok_visa")

    # when: Ada pays Bob
    txn = wallet_transfer(
        actor=ada, user=ada, source_wallet_id=source.pk, destination_wallet_id=destination.pk, amount=2_500
    )

    # then: its events are delivered by the worker, its audit row is written ...
    events = OutboxEvent.objects.filter(payload__transaction=txn.pk)
    wait_for(
        lambda: events.count() == 3 and not events.filter(delivered_at__isnull=True).exists(),
        timeout=30,
        what="the transfer's events to be delivered",
        log=celery_worker_process.log_path,
    )
    assert sorted(events.values_list("event_type", flat=True)) == [
        "transaction.completed",
        "wallet.funds_added",
        "wallet.funds_deducted",
    ]
    assert AuditLog.objects.filter(action="wallet.transfer", entity_id=txn.pk).count() == 1
    # ... and each party gets one email through the SMTP server
    completed = events.get(event_type="transaction.completed")
    rows = Notification.objects.filter(event=completed)
    wait_for(
        lambda: len(emails_about(smtp_sink, rows)) == 2,
        timeout=30,
        what="the two transfer emails",
        log=celery_worker_process.log_path,
    )
    assert sorted((m["To"], m["Subject"]) for m in emails_about(smtp_sink, rows)) == [
        ("ada@example.com", "You sent 25.00 USD to Bob Babbage"),
        ("bob@example.com", "You received 25.00 USD from Ada Lovelace"),
    ]

    # when: the broker hands the same event over twice more (an ack lost), and then once more after
    # the outbox lost track of which consumers had run (the worst case: only the rows' uniqueness
    # and the send claim are left to stop a second email)
    OutboxEvent.objects.filter(pk=completed.pk).update(delivered_at=None)
    publish_event(event_id=completed.pk)
    publish_event(event_id=completed.pk)
    wait_for(
        lambda: events.filter(pk=completed.pk, delivered_at__isnull=False).exists(),
        timeout=30,
        what="redelivery",
    )
    ConsumedEvent.objects.filter(event=completed).delete()
    OutboxEvent.objects.filter(pk=completed.pk).update(delivered_at=None)
    publish_event(event_id=completed.pk)
    wait_for(
        lambda: (
            ConsumedEvent.objects.filter(event=completed, consumer="notifications").exists()
            and events.filter(pk=completed.pk, delivered_at__isnull=False).exists()
        ),
        timeout=30,
        what="the second redelivery",
    )
    time.sleep(1)  # room for any stray send to arrive (none may)

    # then: still one email to each party, and the deposit's one email
    assert len(emails_about(smtp_sink, rows)) == 2
    assert rows.count() == 2
    assert set(rows.values_list("status", "attempts")) == {("sent", 1)}
    deposit_mail = [m for m in smtp_sink.received() if m["Subject"] == "Deposit of 100.00 USD completed"]
    assert [m["To"] for m in deposit_mail] == ["ada@example.com"]
    assert len(smtp_sink.received()) == 3


def test_gateway_raw_logs_of_a_payments_lifecycle_land_in_mongodb(
    celery_worker_process, client_for, user, smtp_sink, wait_for
):
    client = client_for(user)

    def post(path, body, trace):
        response = client.post(path, body, format="json", HTTP_X_CORRELATION_ID=trace)
        assert response.status_code in (200, 201), response.content
        return response.json()

    # when: a payment is authorized, captured and partly refunded
    payment = post(
        "/api/v1/payments",
        {"amount": 8000, "currency": "USD", "payment_method": "tok_mastercard", "capture_method": "manual"},
        "e2e-authorize",
    )
    post(f"/api/v1/payments/{payment['id']}/capture", {}, "e2e-capture")
    post(f"/api/v1/payments/{payment['id']}/refunds", {"amount": 3000}, "e2e-refund")

    # then: the worker wrote each gateway exchange to MongoDB, findable by the payment id
    def exchanges():
        return [
            d for d in raw_log_find(payment_id=payment["id"]) if d["event_type"] == "payment.gateway_exchange"
        ]

    wait_for(lambda: len(exchanges()) == 3, timeout=30, what="3 raw logs", log=celery_worker_process.log_path)
    assert [(d["operation"], d["outcome"], d["correlation_id"]) for d in exchanges()] == [
        ("authorize", "authorized", "e2e-authorize"),
        ("capture", "captured", "e2e-capture"),
        ("refund", "refunded", "e2e-refund"),
    ]
    assert exchanges()[0]["response"]["raw"]["id"] == payment["gateway_reference"]
    # and the emails about it were logged next to them
    wait_for(
        lambda: (
            {d.get("template") for d in raw_log_find(payment_id=payment["id"])}
            >= {"payment_succeeded", "payment_refunded"}
        ),
        timeout=30,
        what="the notification logs",
    )


def test_mongodb_down_never_holds_up_a_payment_and_loses_no_raw_log(
    celery_worker_process, client_for, user, mongo_server, wait_for
):
    # given: MongoDB is down
    mongo_server.stop()
    mongo.close_clients()
    client = client_for(user)

    # when: payments are made
    started = time.monotonic()
    payments = [
        client.post(
            "/api/v1/payments", {"amount": 100 + i, "currency": "USD", "payment_method": "tok_visa"}
        ).json()
        for i in range(3)
    ]
    elapsed = time.monotonic() - started

    # then: they went through at once (the web side only wrote event rows) ...
    assert [p["status"] for p in payments] == ["succeeded"] * 3
    assert elapsed < 3, f"3 payments took {elapsed:.2f}s with MongoDB down"
    # ... and the worker, after its retries, dead-lettered each exchange's write
    events = OutboxEvent.objects.filter(
        event_type="payment.gateway_exchange", payload__payment__in=[p["id"] for p in payments]
    )
    letters = DeadLetter.objects.filter(kind="raw_log", reference__in=events.values("pk"))
    wait_for(
        lambda: letters.count() == 3, timeout=30, what="3 dead letters", log=celery_worker_process.log_path
    )

    # when: MongoDB is back and the dead letters are replayed
    mongo_server.start()
    for letter in letters:
        assert dead_letter_replay(dead_letter_id=letter.pk)

    # then: every raw log is there (each payment's email log may come first: wait for the exchanges)
    wait_for(
        lambda: all(
            any(d["event_type"] == "payment.gateway_exchange" for d in raw_log_find(payment_id=p["id"]))
            for p in payments
        ),
        timeout=30,
        what="the replayed raw logs",
        log=celery_worker_process.log_path,
    )
    for payment in payments:
        [document] = [
            d for d in raw_log_find(payment_id=payment["id"]) if d["event_type"] == "payment.gateway_exchange"
        ]
        assert document["payment_id"] == payment["id"]
