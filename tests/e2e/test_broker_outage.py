"""The broker stops while money moves: nothing is lost, and after it returns every email goes out once.

The test starts its own broker (a RabbitMQ node on free ports, production's broker, for the web
side and the worker), a real `celery -A config worker` on it and an SMTP sink. Payments and
transfers made while the broker is stopped commit with their events waiting in the outbox
(publishing fails and is left to the sweep); the broker comes back, the sweep hands every waiting
event over, and the worker delivers each one and sends each email exactly once.
"""

import time
from datetime import timedelta

import pytest

from apps.accounts.tests.factories import UserFactory
from apps.core.models import OutboxEvent
from apps.core.outbox import sweep_outbox
from apps.gateways.models import SimulatedCharge
from apps.notifications.models import Notification
from apps.notifications.services import message_id
from apps.payments.models import Payment
from apps.payments.services import payment_create, payments_reconcile_due
from apps.wallets.services import wallet_create, wallet_deposit, wallet_transfer
from tests.fakes.rabbitmq_server import RabbitMQServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def broker(tmp_path):
    with RabbitMQServer(tmp_path / "broker") as server:
        yield server


@pytest.fixture
def worker_env(broker, smtp_sink):
    return {
        "CELERY_BROKER_URL": broker.url,
        "TEST_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_URL": smtp_sink.url,
    }


def everything_delivered():
    return not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


def test_events_made_while_the_broker_is_down_are_delivered_by_the_sweep_and_emailed_once(
    celery_worker_process, broker, smtp_sink, wait_for
):
    log = celery_worker_process.log_path
    # given: Ada with money and Bob, everything so far delivered
    ada = UserFactory(email="ada@example.com", full_name="Ada Lovelace")
    bob = UserFactory(email="bob@example.com", full_name="Bob Babbage")
    source = wallet_create(actor=ada, user=ada, currency="USD")
    destination = wallet_create(actor=bob, user=bob, currency="USD")
    wallet_deposit(actor=ada, user=ada, wallet_id=source.pk, amount=10_000, payment_method="tok_visa")
    smtp_sink.wait_for(1)
    # (the email's own `notification.sent` event is written once it is recorded sent, after the
    # SMTP exchange: waited for too, or it could be left for the outage below)
    wait_for(
        lambda: Notification.objects.filter(status="sent").exists() and everything_delivered(),
        timeout=30,
        what="the setup's events",
        log=log,
    )

    # when: the broker stops, and payments and transfers are made
    broker.stop()
    timings = []
    moved = []
    for amount in (1_000, 2_000):
        started = time.monotonic()
        payment = payment_create(
            actor=ada, owner=ada, amount=amount, currency="USD", payment_method="tok_visa"
        )
        transfer = wallet_transfer(
            actor=ada,
            user=ada,
            source_wallet_id=source.pk,
            destination_wallet_id=destination.pk,
            amount=amount,
        )
        timings.append(time.monotonic() - started)
        moved.append((payment, transfer))

    # then: the money moved at once, and the events wait in the outbox, none published
    assert all(payment.status == "succeeded" for payment, _ in moved)
    assert max(timings) < 3, f"a payment and a transfer took {max(timings):.2f}s with the broker down"
    waiting = OutboxEvent.objects.filter(delivered_at__isnull=True)
    # per round: payment.created, payment.gateway_exchange, payment.succeeded and the transfer's three
    assert waiting.count() == 2 * 6
    assert not waiting.filter(published_at__isnull=False).exists()
    assert Notification.objects.filter(status="sent").count() == 1  # only the deposit's email

    # when: the broker is back and the sweep runs once (as beat's `outbox-sweep` does)
    broker.start()

    # then: its first try hands every event over: a connection the restart dropped is replaced
    assert sweep_outbox(older_than=timedelta(0)) == 2 * 6

    # then: every event is delivered and every email goes out, each exactly once
    wait_for(everything_delivered, timeout=60, what="every event to be delivered", log=log)
    expected = {
        ("ada@example.com", "Payment of 10.00 USD succeeded"),
        ("ada@example.com", "Payment of 20.00 USD succeeded"),
        ("ada@example.com", "You sent 10.00 USD to Bob Babbage"),
        ("ada@example.com", "You sent 20.00 USD to Bob Babbage"),
        ("bob@example.com", "You received 10.00 USD from Ada Lovelace"),
        ("bob@example.com", "You received 20.00 USD from Ada Lovelace"),
    }
    wait_for(lambda: len(smtp_sink.received()) >= 1 + len(expected), timeout=60, what="the emails", log=log)
    time.sleep(1)  # room for a duplicate to show up (none may)
    received = smtp_sink.received()
    assert {(m["To"], m["Subject"]) for m in received[1:]} == expected
    assert len(received) == 1 + len(expected)
    rows = Notification.objects.all()
    assert sorted(m["Message-ID"] for m in received) == sorted(message_id(n.pk) for n in rows)
    assert set(rows.values_list("status", "attempts")) == {("sent", 1)}


def test_an_asynchronous_payment_accepted_while_the_broker_is_down_is_charged_once_it_is_back(
    celery_worker_process, broker, smtp_sink, wait_for
):
    log = celery_worker_process.log_path
    ada = UserFactory(email="ada@example.com", full_name="Ada Lovelace")

    # when: the broker stops, and a payment is accepted with `Prefer: respond-async`
    broker.stop()
    started = time.monotonic()
    payment = payment_create(
        actor=ada, owner=ada, amount=4_200, currency="USD", payment_method="tok_visa", respond_async=True
    )
    took = time.monotonic() - started

    # then: accepted at once, nothing charged, its step waiting in the outbox
    assert payment.status == "pending"
    assert took < 3, f"accepting took {took:.2f}s with the broker down"
    assert not SimulatedCharge.objects.exists()
    step = OutboxEvent.objects.get(aggregate_id=payment.pk, event_type="payment.processing_requested")
    assert step.published_at is None
    # reconciliation does not take it for stuck: its step is coming
    payments_reconcile_due(older_than=timedelta(0))
    assert Payment.objects.get(pk=payment.pk).status == "pending"

    # when: the broker is back and the sweep hands the waiting events over
    broker.start()
    assert sweep_outbox(older_than=timedelta(0)) == 2  # payment.created, payment.processing_requested

    # then: the worker charges it once, and its email goes out once
    wait_for(
        lambda: Payment.objects.get(pk=payment.pk).status == "succeeded",
        timeout=60,
        what="the worker to charge the payment",
        log=log,
    )
    assert SimulatedCharge.objects.get().idempotency_key == payment.pk
    smtp_sink.wait_for(1)
    time.sleep(1)  # room for a duplicate to show up (none may)
    assert [(m["To"], m["Subject"]) for m in smtp_sink.received()] == [
        ("ada@example.com", "Payment of 42.00 USD succeeded")
    ]
