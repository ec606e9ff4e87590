"""Each event worth telling becomes one email per recipient, written once however often it arrives."""

import pytest
from django.db import transaction

from apps.accounts.tests.factories import UserFactory
from apps.core.models import ConsumedEvent, OutboxEvent
from apps.core.outbox import deliver_event
from apps.notifications.consumers import notify
from apps.notifications.models import Notification
from apps.payments.services import payment_create, payment_refund, review_decide
from apps.wallets.services import wallet_create, wallet_deposit, wallet_transfer

pytestmark = pytest.mark.django_db

T = Notification.Template


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Runs a service the way a request does: its after-commit work (events, emails) happens."""

    def call(service, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return service(**kwargs)

    return call


@pytest.fixture
def ada(db):
    return UserFactory(email="ada@example.com", full_name="Ada Lovelace")


@pytest.fixture
def bob(db):
    return UserFactory(email="bob@example.com", full_name="Bob Babbage")


def funded_wallet(run, owner, amount):
    wallet = run(wallet_create, actor=owner, user=owner, currency="USD")
    run(
        wallet_deposit, actor=owner, user=owner, wallet_id=wallet.pk, amount=amount, payment_method="tok_visa"
    )
    return wallet


def transfer(run, sender, recipient, amount, outbox):
    """`sender` (given money first) pays `recipient`; returns the transfer and the recipient's wallet,
    with only the transfer's emails left in `outbox`."""
    source = funded_wallet(run, sender, 10_000)
    destination = run(wallet_create, actor=recipient, user=recipient, currency="USD")
    outbox.clear()
    txn = run(
        wallet_transfer,
        actor=sender,
        user=sender,
        source_wallet_id=source.pk,
        destination_wallet_id=destination.pk,
        amount=amount,
    )
    return txn, destination


def test_a_transfer_emails_the_sender_and_the_recipient_once_each(run, ada, bob, outbox):
    # when
    txn, destination = transfer(run, ada, bob, 1234, outbox)

    # then: one email to each party, each saying their side of it
    assert sorted((m.to[0], m.subject) for m in outbox) == [
        ("ada@example.com", "You sent 12.34 USD to Bob Babbage"),
        ("bob@example.com", "You received 12.34 USD from Ada Lovelace"),
    ]
    sent = {m.to[0]: m for m in outbox}
    assert txn.pk in sent["ada@example.com"].body
    assert destination.pk in sent["bob@example.com"].body
    html, mimetype = sent["bob@example.com"].alternatives[0]
    assert mimetype == "text/html"
    assert "<strong>12.34 USD</strong>" in html
    rows = Notification.objects.filter(event__aggregate_id=txn.pk)
    assert sorted(rows.values_list("user_id", "template", "status")) == sorted(
        [(ada.pk, T.TRANSFER_SENT, "sent"), (bob.pk, T.TRANSFER_RECEIVED, "sent")]
    )


def test_deposits_tell_the_owner_whether_the_money_arrived(run, ada, outbox):
    wallet = run(wallet_create, actor=ada, user=ada, currency="EUR")

    run(wallet_deposit, actor=ada, user=ada, wallet_id=wallet.pk, amount=5000, payment_method="tok_visa")
    run(
        wallet_deposit,
        actor=ada,
        user=ada,
        wallet_id=wallet.pk,
        amount=700,
        payment_method="tok_chargeDeclined",
    )

    assert [m.subject for m in outbox] == [
        "Deposit of 50.00 EUR completed",
        "Your deposit of 7.00 EUR did not go through",
    ]
    assert "card_declined" in outbox[1].body
    assert {m.to[0] for m in outbox} == {"ada@example.com"}


def test_a_new_account_gets_a_welcome_email(api_client, django_capture_on_commit_callbacks, outbox):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/v1/auth/register",
            {"email": "grace@example.com", "password": "a long and unusual passphrase", "full_name": "Grace"},
            format="json",
        )

    assert response.status_code == 201
    assert [(m.to, m.subject) for m in outbox] == [(["grace@example.com"], "Welcome to Paydesk")]
    assert "Hi Grace," in outbox[0].body


def test_payments_tell_their_owner_of_success_failure_and_refunds(run, ada, outbox):
    paid = run(payment_create, actor=ada, owner=ada, amount=2500, currency="USD", payment_method="tok_visa")
    run(payment_create, actor=ada, owner=ada, amount=900, currency="USD", payment_method="tok_chargeDeclined")
    run(payment_refund, actor=ada, owner=ada, payment_id=paid.pk, amount=1000)
    run(payment_refund, actor=ada, owner=ada, payment_id=paid.pk)

    assert [m.subject for m in outbox] == [
        "Payment of 25.00 USD succeeded",
        "Payment of 9.00 USD failed",
        f"10.00 USD refunded on payment {paid.pk}",
        f"15.00 USD refunded on payment {paid.pk}",
    ]
    assert "(10.00 USD refunded so far)" in outbox[2].body
    assert "the payment is now fully refunded" in outbox[3].body
    assert "card_declined" in outbox[1].body


def test_a_review_decision_is_told_to_the_payment_owner(run, ada, staff_reviewer, outbox):
    held = run(
        payment_create,
        actor=ada,
        owner=ada,
        amount=7000,
        currency="USD",
        payment_method="tok_riskLevelElevated",
    )
    assert held.status == "in_review"

    run(review_decide, actor=staff_reviewer, payment_id=held.pk, decision="deny", note="stolen card")

    assert [(m.to[0], m.subject) for m in outbox] == [
        ("ada@example.com", f"Payment {held.pk} was denied after review")
    ]
    assert "nothing will be charged" in outbox[0].body


def emit(event_type, aggregate, payload):
    from apps.core.outbox import emit_event

    with transaction.atomic():
        return emit_event(event_type=event_type, aggregate=aggregate, payload=payload)


@pytest.mark.parametrize(
    ("event_type", "extra", "subject", "says"),
    [
        (
            "subscription.renewed",
            {},
            "Your pro subscription was renewed",
            "19.00 USD was charged (payment pay_1)",
        ),
        (
            "subscription.payment_failed",
            {"failure_code": "card_declined", "attempts_left": 2, "next_billing_date": "2026-02-03"},
            "We could not renew your subscription",
            "We could not charge 19.00 USD for your subscription sub_1 (card_declined). We will try again on",
        ),
        (
            "subscription.payment_failed",
            {"failure_code": "card_declined", "attempts_left": 0},
            "Your subscription is unpaid",
            "We will not try again",
        ),
        (
            "subscription.canceled",
            {"reason": "payment_failed"},
            "Your subscription sub_1 is canceled",
            "kept failing",
        ),
    ],
)
def test_subscription_events_email_the_subscriber(
    django_capture_on_commit_callbacks, ada, outbox, event_type, extra, subject, says
):
    # the payload subscriptions emit (docs/events.md)
    payload = {
        "subscription": "sub_1",
        "owner": ada.pk,
        "plan_id": "pro",
        "status": "active",
        "amount": 1900,
        "currency": "USD",
        "payment": "pay_1",
        **extra,
    }
    with django_capture_on_commit_callbacks(execute=True):
        emit(event_type, ada, payload)

    assert [(m.to[0], m.subject) for m in outbox] == [("ada@example.com", subject)]
    assert says in outbox[0].body


def test_subscription_state_events_without_an_email_of_their_own_send_nothing(
    django_capture_on_commit_callbacks, ada, outbox
):
    with django_capture_on_commit_callbacks(execute=True):
        for event_type in ("subscription.created", "subscription.past_due", "subscription.unpaid"):
            emit(
                event_type, ada, {"subscription": "sub_1", "owner": ada.pk, "amount": 1900, "currency": "USD"}
            )

    assert outbox == []
    assert not Notification.objects.exists()


def test_the_same_event_consumed_twice_still_writes_and_sends_one_email_per_party(run, ada, bob, outbox):
    # given: a transfer whose emails went out
    txn, _ = transfer(run, ada, bob, 100, outbox)
    event = OutboxEvent.objects.get(event_type="transaction.completed", aggregate_id=txn.pk)
    before = len(outbox)

    # when: the outbox forgets it ran the consumer (worst case), and the consumer runs twice more
    ConsumedEvent.objects.filter(event=event).delete()
    OutboxEvent.objects.filter(pk=event.pk).update(delivered_at=None)
    run(deliver_event, event_id=event.pk)
    with transaction.atomic():
        notify(event)

    # then: still one row and one email per party
    assert Notification.objects.filter(event=event).count() == 2
    assert len(outbox) == before


def test_a_delivered_event_is_not_consumed_again(run, ada, outbox):
    wallet = run(wallet_create, actor=ada, user=ada, currency="USD")
    txn = run(wallet_deposit, actor=ada, user=ada, wallet_id=wallet.pk, amount=300, payment_method="tok_visa")
    event = OutboxEvent.objects.get(event_type="transaction.completed", aggregate_id=txn.pk)
    assert event.delivered_at is not None
    OutboxEvent.objects.filter(pk=event.pk).update(delivered_at=None)  # as if the broker redelivered it

    run(deliver_event, event_id=event.pk)

    assert [m.subject for m in outbox] == ["Deposit of 3.00 USD completed"]
    assert ConsumedEvent.objects.filter(event=event, consumer="notifications").count() == 1


def test_a_name_with_line_breaks_cannot_add_headers_to_the_subject(run, ada, outbox):
    # given: a recipient whose name tries to smuggle a header into the sender's subject line
    mallory = UserFactory(email="mallory@example.com", full_name="Mallory\r\nBcc: victim@example.com")

    transfer(run, ada, mallory, 100, outbox)

    sent = next(m for m in outbox if m.to == ["ada@example.com"])
    assert sent.subject == "You sent 1.00 USD to Mallory Bcc: victim@example.com"
    assert sent.bcc == []
    assert Notification.objects.get(user=ada, template=T.TRANSFER_SENT).status == "sent"
