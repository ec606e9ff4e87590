"""Authorize.Net's webhooks settle payments made through the Authorize.Net gateway, end to end: the
payment is charged through the gateway against the fake XML API, the fake (or its "dashboard")
changes the transaction at Authorize.Net, and the signed notification Authorize.Net would send is
delivered to POST /api/v1/webhooks/authorize-net. Matched on the transId, or (an answer lost before
the transId came back) on the invoice number Paydesk sent the charge under."""

import pytest

from apps.core.models import OutboxEvent
from apps.gateways.authorizenet.submissions import reference_for
from apps.payments.models import Payment, Refund, Review
from apps.payments.services import payment_create, payment_refund
from apps.payments.tests.factories import sum_of_postings
from apps.webhooks.models import WebhookEvent
from apps.webhooks.tests.factories import anet_event, received

pytestmark = pytest.mark.django_db(transaction=True)
S = Payment.Status
PREFIX = "net.authorize.payment."


@pytest.fixture
def pay(fake_authorizenet, user):
    """`pay(card="visa", **fields)`: a 20.00 USD payment through the Authorize.Net gateway."""

    def make(card="visa", amount=2000, **fields):
        return payment_create(
            actor=user,
            owner=user,
            amount=amount,
            currency="USD",
            payment_method=fake_authorizenet.nonce(card),
            **fields,
        )

    return make


def notify(deliver, event_type, trans_id, *, response_code=1, amount="20.00", **payload):
    body = anet_event(
        f"{PREFIX}{event_type}",
        {"id": trans_id, "responseCode": response_code, "authAmount": float(amount), **payload},
    )
    return received(deliver.anet(body))


def lost_answer(fake_authorizenet, pay, card="visa", **fields):
    """A payment Authorize.Net charged but whose answer never came: `reconcile`, no transId."""
    fake_authorizenet.hang_next(1, seconds=2)
    payment = pay(card, **fields)
    assert (payment.status, payment.gateway_reference) == (S.RECONCILE, "")
    [txn] = [t for t in fake_authorizenet.transactions if t["invoice"] == reference_for(payment.pk)]
    return payment, txn


def test_a_late_success_settles_a_payment_whose_answer_was_lost_by_its_invoice_number(
    deliver, fake_authorizenet, pay
):
    payment, txn = lost_answer(fake_authorizenet, pay)

    event = notify(deliver, "authcapture.created", txn["transId"], invoiceNumber=txn["invoice"])

    payment.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED
    assert (payment.status, payment.gateway_reference, payment.amount_captured) == (
        S.SUCCEEDED,
        txn["transId"],
        2000,
    )
    assert sum_of_postings("platform_revenue", "USD") == 2000


def test_a_charge_held_after_its_answer_was_lost_is_put_in_review(deliver, fake_authorizenet, pay):
    payment, txn = lost_answer(fake_authorizenet, pay, "held")

    notify(deliver, "fraud.held", txn["transId"], response_code=4, invoiceNumber=txn["invoice"])

    payment.refresh_from_db()
    assert payment.status == S.IN_REVIEW
    assert Review.objects.get(payment=payment).reasons == ["gateway_elevated_risk"]


def test_a_held_purchase_approved_at_authorize_net_is_captured_and_its_review_closed(
    deliver, fake_authorizenet, pay
):
    payment = pay("held")
    assert payment.status == S.IN_REVIEW
    fake_authorizenet.dashboard_decide(payment.gateway_reference, approve=True)

    notify(deliver, "fraud.approved", payment.gateway_reference)

    payment.refresh_from_db()
    review = Review.objects.get(payment=payment)
    assert (payment.status, payment.amount_captured) == (S.SUCCEEDED, 2000)
    assert (review.status, review.decided_by, review.note.startswith("Approved at the payment provider")) == (
        "approved",
        None,
        True,
    )
    assert (
        OutboxEvent.objects.filter(aggregate_id=payment.pk, event_type="payment.review_decided").count() == 1
    )
    assert sum_of_postings("platform_revenue", "USD") == 2000


def test_an_authorization_approved_at_authorize_net_still_waits_for_paydesks_review(
    deliver, fake_authorizenet, pay
):
    payment = pay("held", capture_method="manual")
    fake_authorizenet.dashboard_decide(payment.gateway_reference, approve=True)

    event = notify(deliver, "fraud.approved", payment.gateway_reference)

    payment.refresh_from_db()
    assert event.status == WebhookEvent.Status.IGNORED
    assert payment.status == S.IN_REVIEW
    assert Review.objects.get(payment=payment).status == "open"
    assert sum_of_postings("platform_revenue", "USD") == 0


def test_a_held_charge_declined_at_authorize_net_is_canceled_and_its_review_closed(
    deliver, fake_authorizenet, pay
):
    payment = pay("held")
    fake_authorizenet.dashboard_decide(payment.gateway_reference, approve=False)

    notify(deliver, "fraud.declined", payment.gateway_reference, response_code=2)

    payment.refresh_from_db()
    assert payment.status == S.CANCELED
    assert Review.objects.get(payment=payment).status == "denied"
    assert sum_of_postings("platform_revenue", "USD") == 0


def test_our_own_decision_comes_back_as_a_webhook_and_changes_nothing(
    deliver, fake_authorizenet, pay, reviewer_client
):
    payment = pay("held")
    reviewer_client.put(
        f"/api/v1/payments/{payment.pk}/review", {"decision": "approve", "note": "ok"}, format="json"
    )

    event = notify(deliver, "fraud.approved", payment.gateway_reference)

    payment.refresh_from_db()
    assert event.status == WebhookEvent.Status.IGNORED
    assert payment.status == S.SUCCEEDED
    assert sum_of_postings("platform_revenue", "USD") == 2000


def test_an_authorization_voided_at_authorize_net_cancels_the_payment(deliver, fake_authorizenet, pay):
    payment = pay(capture_method="manual")
    fake_authorizenet.dashboard_void(payment.gateway_reference)

    notify(deliver, "void.created", payment.gateway_reference)

    payment.refresh_from_db()
    assert payment.status == S.CANCELED


def test_a_captured_charge_voided_before_settlement_is_refunded_once(deliver, fake_authorizenet, pay):
    payment = pay()
    fake_authorizenet.dashboard_void(payment.gateway_reference)

    notify(deliver, "void.created", payment.gateway_reference)
    again = notify(deliver, "void.created", payment.gateway_reference)  # another notification of it

    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.REFUNDED, 2000)
    assert again.status == WebhookEvent.Status.IGNORED
    assert Refund.objects.filter(payment=payment).count() == 1
    assert sum_of_postings("platform_revenue", "USD") == 0


def test_the_notification_of_our_own_refund_by_void_is_recognised(deliver, fake_authorizenet, pay, user):
    payment = pay()
    payment_refund(actor=user, owner=user, payment_id=payment.pk)

    event = notify(deliver, "void.created", payment.gateway_reference)

    payment.refresh_from_db()
    assert event.status == WebhookEvent.Status.IGNORED
    assert (payment.status, payment.amount_refunded) == (S.REFUNDED, 2000)
    assert Refund.objects.filter(payment=payment).count() == 1


def test_the_notification_of_our_own_refund_finds_its_payment_by_the_refunds_invoice_number(
    deliver, fake_authorizenet, pay, user
):
    payment = pay()
    fake_authorizenet.settle()
    refund = payment_refund(actor=user, owner=user, payment_id=payment.pk, amount=500)

    event = notify(
        deliver,
        "refund.created",
        refund.gateway_reference,
        amount="5.00",
        invoiceNumber=reference_for(refund.pk),
    )

    payment.refresh_from_db()
    assert event.payment_id == payment.pk
    assert event.status == WebhookEvent.Status.IGNORED  # already recorded: not refunded twice
    assert payment.amount_refunded == 500
    assert sum_of_postings("platform_revenue", "USD") == 1500
