"""Sending through a real SMTP server: recorded, retried with backoff, failed for good, replayed, swept."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.core.dead_letters import dead_letter_replay
from apps.core.models import DeadLetter, OutboxEvent
from apps.notifications.models import Notification
from apps.notifications.services import message_id, notification_send, notifications_sweep
from apps.notifications.tasks import send_notification
from apps.wallets.services import wallet_create, wallet_deposit
from tests.fakes.smtp_sink import SmtpSink

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(db):
    return UserFactory(email="ada@example.com", full_name="Ada Lovelace")


@pytest.fixture
def deposit(ada, django_capture_on_commit_callbacks):
    """`deposit(amount)`: a card deposit into Ada's wallet, its email sent as after a real request."""
    wallet = wallet_create(actor=ada, user=ada, currency="USD")

    def make(amount=1500):
        with django_capture_on_commit_callbacks(execute=True):
            txn = wallet_deposit(
                actor=ada, user=ada, wallet_id=wallet.pk, amount=amount, payment_method="tok_visa"
            )
        return Notification.objects.get(event__aggregate_id=txn.pk)

    return make


def test_an_email_leaves_through_smtp_as_text_and_html_and_is_recorded(smtp_sink, deposit):
    notification = deposit(1500)

    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Deposit of 15.00 USD completed"
    assert message["Message-ID"] == message_id(notification.pk) == f"<{notification.pk}@paydesk.local>"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "15.00 USD was added to your wallet" in text
    assert "<strong>15.00 USD</strong>" in html
    notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.last_error) == ("sent", 1, "")
    assert notification.sent_at is not None
    event = OutboxEvent.objects.get(event_type="notification.sent", aggregate_id=notification.pk)
    assert event.payload["template"] == "deposit_completed"
    assert "ada@example.com" not in str(event.payload)


def test_the_address_is_encrypted_at_rest(smtp_sink, deposit):
    notification = deposit()

    with connection.cursor() as cursor:
        cursor.execute('SELECT "to" FROM notifications_notification WHERE id = %s', [notification.pk])
        [stored] = cursor.fetchone()
    assert stored.startswith("v2.")
    assert "ada" not in stored
    assert Notification.objects.get(pk=notification.pk).to == "ada@example.com"


def test_a_mail_server_that_stays_down_ends_in_a_dead_letter_and_a_replay_sends_once(
    no_mail_server, deposit, django_capture_on_commit_callbacks
):
    # given: the relay refuses connections for every attempt
    no_mail_server.NOTIFICATION_MAX_ATTEMPTS = 3
    no_mail_server.NOTIFICATION_RETRY_BASE_SECONDS = 0

    # when: the first attempt, then the sweep each time the email is due again
    notification = deposit()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert notifications_sweep() == (1, 0)

    # then: tried three times, failed, dead-lettered, announced
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", 3)
    assert "ConnectionRefusedError" in notification.last_error
    letter = DeadLetter.objects.get(kind="notification", reference=notification.pk)
    assert letter.attempts == 3
    assert OutboxEvent.objects.filter(event_type="notification.failed", aggregate_id=notification.pk).exists()

    # when: the relay is back and an operator replays the dead letter (twice: a double click)
    with SmtpSink() as sink:
        no_mail_server.EMAIL_PORT = sink.port
        with django_capture_on_commit_callbacks(execute=True):
            assert dead_letter_replay(dead_letter_id=letter.pk) is True
        with django_capture_on_commit_callbacks(execute=True):
            assert dead_letter_replay(dead_letter_id=letter.pk) is False

        # then: sent exactly once
        assert [m["Message-ID"] for m in sink.wait_for(1)] == [message_id(notification.pk)]
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)


def test_a_refused_recipient_is_not_retried(smtp_sink, deposit, settings):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0
    smtp_sink.refuse.add("ada@example.com")

    notification = deposit()

    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert "SMTPRecipientsRefused" in notification.last_error
    letter = DeadLetter.objects.get(kind="notification", reference=notification.pk)
    event = OutboxEvent.objects.get(event_type="notification.failed", aggregate_id=notification.pk)
    # the server's answer quotes the address; nothing recorded outside the encrypted column does
    for recorded in (notification.last_error, letter.reason, str(event.payload)):
        assert "ada@example.com" not in recorded
    assert smtp_sink.received() == []


def test_a_transient_failure_puts_the_email_back_with_an_exponential_backoff(no_mail_server, deposit):
    # given: a pending email and a relay that refuses connections
    no_mail_server.NOTIFICATION_MAX_ATTEMPTS = 1
    notification = deposit()
    Notification.objects.filter(pk=notification.pk).update(status="pending", attempts=0)
    no_mail_server.NOTIFICATION_MAX_ATTEMPTS = 5
    no_mail_server.NOTIFICATION_RETRY_BASE_SECONDS = 60

    for attempt, ceiling in ((1, 60), (2, 120), (3, 240)):
        # when: one attempt, as a worker makes it
        started = timezone.now()
        delivery = notification_send(notification_id=notification.pk)

        # then: back to pending, due again within the attempt's backoff (full jitter)
        row = delivery.notification
        assert (row.status, row.attempts) == ("pending", attempt)
        assert 0 <= delivery.retry_in <= ceiling
        assert started + timedelta(seconds=delivery.retry_in) <= row.next_attempt_at
        assert row.next_attempt_at <= timezone.now() + timedelta(seconds=delivery.retry_in)


@pytest.mark.parametrize("status", ["sent", "sending", "failed"])
def test_a_send_task_for_a_row_that_is_not_pending_sends_nothing(smtp_sink, deposit, status):
    notification = deposit()
    smtp_sink.wait_for(1)
    Notification.objects.filter(pk=notification.pk).update(
        status=status, sent_at=timezone.now() if status == "sent" else None
    )

    send_notification.apply(args=[notification.pk])

    assert len(smtp_sink.received()) == 1
    assert Notification.objects.get(pk=notification.pk).attempts == 1


def test_the_sweep_requeues_lost_sends_and_fails_sends_stuck_mid_way(
    smtp_sink, deposit, settings, django_capture_on_commit_callbacks
):
    # given: one email whose send never ran (its worker died first), one whose worker died while
    # sending, and one just written (its send about to run)
    settings.NOTIFICATION_SWEEP_AFTER_SECONDS = 60
    settings.NOTIFICATION_SENDING_TIMEOUT_SECONDS = 600
    lost, stuck, recent = deposit(100), deposit(200), deposit(300)
    smtp_sink.wait_for(3)
    long_ago = timezone.now() - timedelta(hours=1)
    Notification.objects.filter(pk=lost.pk).update(status="pending", sent_at=None, next_attempt_at=long_ago)
    Notification.objects.filter(pk=stuck.pk).update(status="sending", sent_at=None, updated_at=long_ago)
    Notification.objects.filter(pk=recent.pk).update(
        status="pending", sent_at=None, next_attempt_at=timezone.now() + timedelta(seconds=60)
    )

    # when
    with django_capture_on_commit_callbacks(execute=True):
        queued, failed = notifications_sweep()

    # then: only the lost one is queued and sent (the recent one is not yet due: its own send is
    # on its way); the stuck one is failed (it may have gone out) and dead-lettered
    assert (queued, failed) == (1, 1)
    assert [m["Message-ID"] for m in smtp_sink.received()[3:]] == [message_id(lost.pk)]
    assert Notification.objects.get(pk=lost.pk).status == "sent"
    stuck.refresh_from_db()
    assert stuck.status == "failed"
    assert "may have been sent" in stuck.last_error
    assert DeadLetter.objects.filter(kind="notification", reference=stuck.pk).exists()
    assert Notification.objects.get(pk=recent.pk).status == "pending"
