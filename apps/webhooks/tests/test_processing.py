"""Processing: provider events change their payments once, in order, with their books and trail.

Tasks run eagerly here (the worker's retries run at once); payments are made through the
services, on the Stripe gateway against the local Stripe look-alike or on the simulated gateway.
"""

import io
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from apps.audit.models import AuditLog
from apps.core.models import DeadLetter, OutboxEvent
from apps.payments.models import Refund
from apps.payments.services import payment_create
from apps.payments.tests.factories import sum_of_postings
from apps.webhooks.models import WebhookEvent
from apps.webhooks.tests.factories import anet_event, encode, received, stripe_event, stripe_signature

pytestmark = pytest.mark.django_db(transaction=True)

S = WebhookEvent.Status


# --- refunds made at the provider --------------------------------------------------------------


def test_refund_made_at_stripe_shows_on_the_payment_and_in_the_ledger(
    stripe_payment, dashboard, deliver, auth_client
):
    payment = stripe_payment(5000)
    refund = dashboard.refunds.create(params={"payment_intent": payment.gateway_reference, "amount": 2000})

    event = received(deliver.stripe(stripe_event("refund.created", refund.to_dict())))

    assert event.status == S.PROCESSED
    shown = auth_client.get(f"/api/v1/payments/{payment.pk}").json()
    assert (shown["status"], shown["amount_refunded"]) == ("succeeded", 2000)
    (row,) = Refund.objects.filter(payment=payment)
    assert (row.amount, row.status, row.gateway_reference) == (2000, "succeeded", refund.id)
    assert sum_of_postings("platform_revenue", "EUR") == 3000
    assert sum_of_postings("gateway_clearing", "EUR") == -3000
    assert OutboxEvent.objects.filter(event_type="payment.refunded", aggregate_id=payment.pk).count() == 1

    # the rest is refunded at Stripe too; charge.refunded lists both refunds, the first is known
    rest = dashboard.refunds.create(params={"payment_intent": payment.gateway_reference})
    charge = {
        "id": refund.charge,
        "object": "charge",
        "payment_intent": payment.gateway_reference,
        "amount_refunded": 5000,
        "refunds": {"object": "list", "data": [refund.to_dict(), rest.to_dict()]},
    }
    received(deliver.stripe(stripe_event("charge.refunded", charge)))

    shown = auth_client.get(f"/api/v1/payments/{payment.pk}").json()
    assert (shown["status"], shown["amount_refunded"]) == ("refunded", 5000)
    assert Refund.objects.filter(payment=payment).count() == 2
    assert sum_of_postings("platform_revenue", "EUR") == 0


def _charge_without_refund_list(payment, *, amount_refunded: int) -> dict:
    """A charge as Stripe sends it since API 2022-11-15: a total, no `refunds.data` unless expanded."""
    return {
        "id": f"ch_for_{payment.gateway_reference}",
        "object": "charge",
        "payment_intent": payment.gateway_reference,
        "amount": payment.amount,
        "amount_captured": payment.amount,
        "amount_refunded": amount_refunded,
        "refunded": amount_refunded == payment.amount,
        "currency": "eur",
    }


def test_charge_refunded_without_a_refund_list_applies_what_the_books_lack_once(
    stripe_payment, deliver, auth_client
):
    # given 2000 of 5000 refunded in Stripe's dashboard, told by a charge.refunded with no list
    payment = stripe_payment(5000)
    partial = stripe_event("charge.refunded", _charge_without_refund_list(payment, amount_refunded=2000))

    event = received(deliver.stripe(partial))

    # then the books show it: payment, refund row, ledger, audit, outbox
    assert event.status == S.PROCESSED
    shown = auth_client.get(f"/api/v1/payments/{payment.pk}").json()
    assert (shown["status"], shown["amount_refunded"]) == ("succeeded", 2000)
    (row,) = Refund.objects.filter(payment=payment)
    assert (row.amount, row.status) == (2000, "succeeded")
    assert sum_of_postings("platform_revenue", "EUR") == 3000
    (audit,) = AuditLog.objects.filter(action="refund.create", entity_id=row.pk)
    assert audit.after["provider_amount_refunded"] == "2000"
    assert OutboxEvent.objects.filter(event_type="payment.refunded", aggregate_id=payment.pk).count() == 1

    # when the same total comes again: the same delivery, and another event with the same charge
    assert deliver.stripe(partial).json()["duplicate"] is True
    again = received(
        deliver.stripe(
            stripe_event("charge.refunded", _charge_without_refund_list(payment, amount_refunded=2000))
        )
    )

    # then nothing more is applied
    assert again.status == S.IGNORED
    assert "already has 2000 refunded" in again.outcome
    assert Refund.objects.filter(payment=payment).count() == 1
    assert sum_of_postings("platform_revenue", "EUR") == 3000
    assert AuditLog.objects.filter(action="refund.create").count() == 1

    # and the rest refunded later adds only the difference
    received(
        deliver.stripe(
            stripe_event("charge.refunded", _charge_without_refund_list(payment, amount_refunded=5000))
        )
    )
    shown = auth_client.get(f"/api/v1/payments/{payment.pk}").json()
    assert (shown["status"], shown["amount_refunded"]) == ("refunded", 5000)
    assert sorted(Refund.objects.filter(payment=payment).values_list("amount", flat=True)) == [2000, 3000]
    assert sum_of_postings("platform_revenue", "EUR") == 0


def test_charge_refunded_total_counts_refunds_paydesk_already_recorded(
    stripe_payment, dashboard, deliver, auth_client
):
    # given a refund Paydesk made itself and one applied by its id from refund.created
    payment = stripe_payment(5000)
    assert (
        auth_client.post(
            f"/api/v1/payments/{payment.pk}/refunds", {"amount": 1500}, format="json"
        ).status_code
        == 201
    )
    by_id = dashboard.refunds.create(params={"payment_intent": payment.gateway_reference, "amount": 500})
    received(deliver.stripe(stripe_event("refund.created", by_id.to_dict())))

    # when Stripe's charge.refunded reports the 2000 in all
    event = received(
        deliver.stripe(
            stripe_event("charge.refunded", _charge_without_refund_list(payment, amount_refunded=2000))
        )
    )

    # then it adds nothing
    assert event.status == S.IGNORED
    payment.refresh_from_db()
    assert payment.amount_refunded == 2000
    assert Refund.objects.filter(payment=payment).count() == 2
    assert sum_of_postings("platform_revenue", "EUR") == 3000


def test_refund_created_after_its_charge_total_was_applied_is_not_counted_again(
    stripe_payment, dashboard, deliver
):
    # given a refund made at Stripe whose charge.refunded (a total, no list) arrives first
    payment = stripe_payment(5000)
    refund = dashboard.refunds.create(params={"payment_intent": payment.gateway_reference, "amount": 2000})
    received(
        deliver.stripe(
            stripe_event("charge.refunded", _charge_without_refund_list(payment, amount_refunded=2000))
        )
    )

    # when its refund.created comes after
    event = received(deliver.stripe(stripe_event("refund.created", refund.to_dict())))

    # then the recorded refund takes its id and nothing more moves
    assert event.status == S.IGNORED
    assert "already recorded from the charge's total" in event.outcome
    (row,) = Refund.objects.filter(payment=payment)
    assert (row.amount, row.gateway_reference) == (2000, refund.id)
    payment.refresh_from_db()
    assert payment.amount_refunded == 2000
    assert sum_of_postings("platform_revenue", "EUR") == 3000
    assert AuditLog.objects.filter(action="refund.identify", entity_id=row.pk).count() == 1
    # and a later replay of either changes nothing
    received(deliver.stripe(stripe_event("refund.created", refund.to_dict())))
    payment.refresh_from_db()
    assert payment.amount_refunded == 2000


def test_charge_refunded_totals_processed_concurrently_apply_once(stripe_payment, deliver):
    from apps.webhooks.services import webhook_event_process

    payment = stripe_payment(5000)
    events = [
        _stored_without_processing(
            deliver,
            stripe_event("charge.refunded", _charge_without_refund_list(payment, amount_refunded=1200)),
        )
        for _ in range(4)
    ]
    start, statuses = threading.Barrier(len(events)), []

    def process(event_id):
        try:
            start.wait()
            statuses.append(webhook_event_process(event_id=event_id).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=process, args=(event.pk,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == sorted([S.PROCESSED] + [S.IGNORED] * 3)
    payment.refresh_from_db()
    assert payment.amount_refunded == 1200
    assert Refund.objects.filter(payment=payment).count() == 1
    assert sum_of_postings("platform_revenue", "EUR") == 3800
    assert AuditLog.objects.filter(action="refund.create").count() == 1


def test_refund_paydesk_made_itself_is_not_counted_again(stripe_payment, fake_stripe, deliver, auth_client):
    payment = stripe_payment(5000)
    assert (
        auth_client.post(
            f"/api/v1/payments/{payment.pk}/refunds", {"amount": 1500}, format="json"
        ).status_code
        == 201
    )
    (ours,) = fake_stripe.refunds

    event = received(deliver.stripe(stripe_event("refund.created", ours)))

    assert event.status == S.IGNORED
    assert "already recorded" in event.outcome
    payment.refresh_from_db()
    assert payment.amount_refunded == 1500
    assert sum_of_postings("platform_revenue", "EUR") == 3500


def test_refund_above_what_was_captured_goes_dead_and_changes_nothing(stripe_payment, deliver):
    payment = stripe_payment(5000)
    refund = {
        "id": "re_forged",
        "object": "refund",
        "amount": 9000,
        "currency": "eur",
        "payment_intent": payment.gateway_reference,
        "status": "succeeded",
    }

    event = received(deliver.stripe(stripe_event("refund.created", refund)))

    assert event.status == S.DEAD
    assert event.attempts == 1  # retrying can't make the provider's numbers fit: dead at once
    assert "9000" in event.last_error
    letter = DeadLetter.objects.get(kind="webhook_event", reference=event.pk)
    assert letter.payload["provider_event_id"] == event.provider_event_id
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("succeeded", 0)
    assert sum_of_postings("platform_revenue", "EUR") == 5000


def test_authorize_net_refund_names_its_original_by_ref_trans_id(deliver, user):
    payment = payment_create(actor=user, owner=user, amount=1000, currency="USD", payment_method="tok_visa")
    refund = anet_event(
        "net.authorize.payment.refund.created",
        {"id": "60020981676", "refTransId": payment.gateway_reference, "responseCode": 1, "authAmount": 4.5},
    )

    event = received(deliver.anet(refund))
    again = deliver.anet(refund)

    assert event.status == S.PROCESSED
    assert again.json()["duplicate"] is True
    payment.refresh_from_db()
    assert (payment.amount_refunded, payment.status) == (450, "succeeded")
    assert Refund.objects.get(payment=payment).gateway_reference == "60020981676"
    assert sum_of_postings("platform_revenue", "USD") == 550


# --- duplicates ----------------------------------------------------------------------------------


def test_the_same_event_delivered_concurrently_is_stored_and_applied_once(stripe_payment, dashboard):
    payment = stripe_payment(5000)
    refund = dashboard.refunds.create(params={"payment_intent": payment.gateway_reference, "amount": 1000})
    body = encode(stripe_event("refund.created", refund.to_dict()))
    signature = stripe_signature(body)
    start, responses = threading.Barrier(6), []

    def deliver_once():
        try:
            start.wait()
            response = Client().post(
                "/api/v1/webhooks/stripe",
                data=body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=signature,
            )
            responses.append((response.status_code, response.json()["duplicate"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver_once) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(responses) == [(200, False)] + [(200, True)] * 5
    assert WebhookEvent.objects.count() == 1
    assert Refund.objects.filter(payment=payment).count() == 1
    payment.refresh_from_db()
    assert payment.amount_refunded == 1000
    assert sum_of_postings("platform_revenue", "EUR") == 4000


def test_two_workers_processing_one_event_apply_it_once(stripe_payment, dashboard, deliver, settings):
    from apps.webhooks.services import webhook_event_process

    payment = stripe_payment(5000)
    refund = dashboard.refunds.create(params={"payment_intent": payment.gateway_reference, "amount": 700})
    event = _stored_without_processing(deliver, stripe_event("refund.created", refund.to_dict()))
    start, statuses = threading.Barrier(2), []

    def process():
        try:
            start.wait()
            statuses.append(webhook_event_process(event_id=event.pk).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=process) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [S.PROCESSED, S.PROCESSED]
    assert WebhookEvent.objects.get(pk=event.pk).attempts == 1
    payment.refresh_from_db()
    assert payment.amount_refunded == 700


def _stored_without_processing(deliver, event):
    """Stored as the endpoint stores it, with the broker unreachable (its task is never queued)."""
    from config.celery import app

    saved = app.conf.task_always_eager, app.conf.broker_url
    app.conf.update(task_always_eager=False, broker_url="amqp://guest:guest@127.0.0.1:1//")
    app._pool, app.amqp._producer_pool = None, None
    try:
        stored = received(deliver.stripe(event))
    finally:
        app.conf.update(task_always_eager=saved[0], broker_url=saved[1])
        app._pool, app.amqp._producer_pool = None, None
    assert stored.status == S.RECEIVED
    return stored


def test_event_stored_while_the_broker_was_down_is_processed_by_the_sweep(stripe_payment, dashboard, deliver):
    from apps.webhooks.tasks import sweep_webhook_events

    payment = stripe_payment(5000)
    refund = dashboard.refunds.create(params={"payment_intent": payment.gateway_reference, "amount": 500})
    event = _stored_without_processing(deliver, stripe_event("refund.created", refund.to_dict()))
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=event.received_at.replace(year=2000))

    assert sweep_webhook_events.delay().get() == 1

    event.refresh_from_db()
    assert event.status == S.PROCESSED
    payment.refresh_from_db()
    assert payment.amount_refunded == 500


# --- disputes, unknown events --------------------------------------------------------------------


def test_dispute_flags_the_payment_with_an_audit_record_and_an_event(stripe_payment, deliver, auth_client):
    payment = stripe_payment(5000)
    dispute = {
        "id": "dp_1Q2w3E",
        "object": "dispute",
        "amount": 5000,
        "currency": "eur",
        "charge": "ch_123",
        "payment_intent": payment.gateway_reference,
        "reason": "fraudulent",
        "status": "needs_response",
    }

    event = received(deliver.stripe(stripe_event("charge.dispute.created", dispute)))
    received(deliver.stripe(stripe_event("charge.dispute.created", dispute)))  # Stripe's own resend

    assert event.status == S.PROCESSED
    shown = auth_client.get(f"/api/v1/payments/{payment.pk}").json()
    assert shown["dispute"]["reference"] == "dp_1Q2w3E"
    assert "dispute" not in shown["metadata"]
    assert shown["dispute"]["reason"] == "fraudulent"
    assert shown["status"] == "succeeded"
    (audit,) = AuditLog.objects.filter(action="payment.dispute_opened", entity_id=payment.pk)
    assert audit.after["dispute"] == "dp_1Q2w3E"
    assert (
        OutboxEvent.objects.filter(event_type="payment.dispute_opened", aggregate_id=payment.pk).count() == 1
    )


def test_unknown_event_types_are_stored_and_ignored(deliver):
    event = received(deliver.stripe(stripe_event("customer.created", {"id": "cus_1", "object": "customer"})))

    assert event.status == S.IGNORED
    assert "does not act on customer.created" in event.outcome


# --- failures, dead letters, replay --------------------------------------------------------------


@pytest.fixture
def refunds_refused():
    """A real database failure while a refund is written: a trigger refusing new refund rows
    (dropped when the test lets processing through)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_refuse_refunds() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'refund rows are refused by the test'; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_refuse_refunds BEFORE INSERT ON payments_refund
                FOR EACH ROW EXECUTE FUNCTION test_refuse_refunds();
            """
        )

    def allow():
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER IF EXISTS test_refuse_refunds ON payments_refund;"
                "DROP FUNCTION IF EXISTS test_refuse_refunds();"
            )

    yield allow
    allow()


def test_handler_failure_is_retried_then_dead_and_replay_processes_it(
    stripe_payment, dashboard, deliver, refunds_refused, settings
):
    payment = stripe_payment(5000)
    refund = dashboard.refunds.create(params={"payment_intent": payment.gateway_reference, "amount": 1200})

    event = received(deliver.stripe(stripe_event("refund.created", refund.to_dict())))

    assert event.status == S.DEAD
    assert event.attempts == settings.WEBHOOK_MAX_ATTEMPTS
    assert "refused by the test" in event.last_error
    letter = DeadLetter.objects.get(kind="webhook_event", reference=event.pk, replayed_at__isnull=True)
    payment.refresh_from_db()
    assert payment.amount_refunded == 0

    refunds_refused()  # the cause is fixed
    call_command("replay_webhooks", "--dry-run")
    assert WebhookEvent.objects.get(pk=event.pk).status == S.DEAD
    call_command("replay_webhooks")

    event.refresh_from_db()
    assert (event.status, event.attempts) == (S.PROCESSED, 1)
    letter.refresh_from_db()
    assert letter.replayed_at is not None
    assert letter.replay_error == ""
    payment.refresh_from_db()
    assert payment.amount_refunded == 1200
    assert sum_of_postings("platform_revenue", "EUR") == 3800
    assert AuditLog.objects.filter(action="webhook_event.replay", entity_id=event.pk).exists()


def test_event_for_no_known_payment_is_retried_then_dead(deliver, settings):
    intent = {"id": "pi_nobody_knows", "object": "payment_intent", "amount_received": 100, "currency": "usd"}

    event = received(deliver.stripe(stripe_event("payment_intent.succeeded", intent)))

    assert event.status == S.DEAD
    assert event.attempts == settings.WEBHOOK_MAX_ATTEMPTS
    assert "pi_nobody_knows" in event.last_error


def test_admin_replay_action_processes_a_dead_event(
    stripe_payment, dashboard, deliver, refunds_refused, admin_user
):
    payment = stripe_payment(5000)
    refund = dashboard.refunds.create(params={"payment_intent": payment.gateway_reference, "amount": 300})
    event = received(deliver.stripe(stripe_event("refund.created", refund.to_dict())))
    assert event.status == S.DEAD
    refunds_refused()
    staff = Client()
    staff.force_login(admin_user)

    response = staff.post(
        "/admin/webhooks/webhookevent/", {"action": "replay", "_selected_action": [event.pk]}, follow=True
    )

    assert response.status_code == 200
    event.refresh_from_db()
    assert event.status == S.PROCESSED
    payment.refresh_from_db()
    assert payment.amount_refunded == 300
    replay = AuditLog.objects.get(action="webhook_event.replay", entity_id=event.pk)
    assert replay.actor_id == str(admin_user.pk)


def test_replay_refuses_an_event_already_applied(stripe_payment, dashboard, deliver):
    payment = stripe_payment(5000)
    refund = dashboard.refunds.create(params={"payment_intent": payment.gateway_reference, "amount": 300})
    event = received(deliver.stripe(stripe_event("refund.created", refund.to_dict())))
    assert event.status == S.PROCESSED

    out = io.StringIO()
    with pytest.raises(CommandError, match="1 event"):
        call_command("replay_webhooks", "--id", event.pk, stdout=out)

    assert "was already applied" in out.getvalue()

    payment.refresh_from_db()
    assert payment.amount_refunded == 300
