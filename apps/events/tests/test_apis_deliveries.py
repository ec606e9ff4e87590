"""GET /webhook-endpoints/{id}/deliveries, GET /webhook-deliveries/{id}, POST …/retry (202), and an
endpoint that fails for 3 days: disabled, its owner emailed."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.events.models import WebhookDelivery, WebhookEndpoint
from apps.events.services import deliveries_sweep
from apps.notifications.models import Notification
from apps.payments.services import payment_create

pytestmark = pytest.mark.django_db(transaction=True)


def pay(user):
    return payment_create(actor=user, owner=user, amount=800, currency="USD", payment_method="tok_visa")


def test_deliveries_list_each_attempt_with_its_status_code_latency_and_error(
    auth_client, user, receiver, endpoint_for
):
    endpoint, _ = endpoint_for(user, receiver.url, events=["payment.succeeded"])
    receiver.behave("fail", status=502)
    pay(user)
    receiver.behave("ok")
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    deliveries_sweep()

    page = auth_client.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries").json()

    [delivery] = page["data"]
    assert page["next_cursor"] is None
    assert delivery["id"].startswith("wd_")
    assert delivery["event"].startswith("evt_")
    assert delivery["event_type"] == "payment.succeeded"
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "succeeded",
        2,
        200,
    )
    assert (delivery["next_attempt_at"], delivery["last_error"]) == (None, None)
    assert delivery["last_attempt_at"].endswith("Z")
    assert [(a["number"], a["status_code"], a["succeeded"], a["error"]) for a in delivery["attempt_log"]] == [
        (1, 502, False, "answered 502"),
        (2, 200, True, None),
    ]
    assert all(isinstance(a["latency_ms"], int) for a in delivery["attempt_log"])
    assert auth_client.get(f"/api/v1/webhook-deliveries/{delivery['id']}").json() == delivery
    filtered = auth_client.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries?status=failed").json()
    assert filtered["data"] == []
    bad = auth_client.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries?status=lost")
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "status")


def test_retry_answers_202_and_makes_a_new_attempt_now(auth_client, user, receiver, endpoint_for):
    endpoint_for(user, receiver.url, events=["payment.succeeded"])
    receiver.behave("fail", status=500)
    pay(user)
    receiver.wait_for(1)
    delivery = WebhookDelivery.objects.get()
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=50)
    receiver.behave("ok")

    response = auth_client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/retry")

    assert response.status_code == 202, response.content
    assert response.json()["id"] == delivery.pk
    receiver.wait_for(2)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert AuditLog.objects.filter(action="webhook_delivery.retry", entity_id=delivery.pk).exists()
    # a succeeded one may be sent again (receivers dedupe by event id)
    assert auth_client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/retry").status_code == 202
    assert len(receiver.wait_for(3)) == 3


def test_another_owners_delivery_is_a_404_and_a_disabled_endpoints_a_409(
    auth_client, client_for, user, other_user, receiver, endpoint_for
):
    endpoint, _ = endpoint_for(other_user, receiver.url, events=["payment.succeeded"])
    pay(other_user)
    theirs = WebhookDelivery.objects.get()
    mine, _ = endpoint_for(user, receiver.url, events=["payment.succeeded"])
    pay(user)
    my_delivery = WebhookDelivery.objects.get(endpoint=mine)

    assert auth_client.get(f"/api/v1/webhook-deliveries/{theirs.pk}").status_code == 404
    assert auth_client.post(f"/api/v1/webhook-deliveries/{theirs.pk}/retry").status_code == 404
    assert auth_client.post("/api/v1/webhook-deliveries/wd_nope/retry").status_code == 404
    WebhookEndpoint.objects.filter(pk=mine.pk).update(status="disabled")
    refused = auth_client.post(f"/api/v1/webhook-deliveries/{my_delivery.pk}/retry")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "webhook_endpoint_disabled")


def test_an_endpoint_failing_for_three_days_is_disabled_and_its_owner_emailed(user, receiver, endpoint_for):
    endpoint, _ = endpoint_for(user, receiver.url, events=["payment.succeeded"])
    receiver.behave("fail", status=500)
    pay(user)
    pay(user)
    receiver.wait_for(2)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None
    assert endpoint.status == "enabled"

    # when: it has failed since three days ago, and the next retry fails too
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=3))
    first = WebhookDelivery.objects.order_by("created_at").first()
    WebhookDelivery.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
    deliveries_sweep()

    endpoint.refresh_from_db()
    assert endpoint.status == "disabled"
    assert endpoint.disabled_reason
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"failed"}
    event = OutboxEvent.objects.get(event_type="webhook_endpoint.disabled", aggregate_id=endpoint.pk)
    assert event.payload["owner"] == user.pk
    notification = Notification.objects.get(event=event)
    assert (notification.user_id, notification.template, notification.status) == (
        user.pk,
        "webhook_endpoint_disabled",
        "sent",
    )
    [email] = [m for m in mail.outbox if endpoint.pk in m.subject]
    assert email.to == [user.email]
    assert "127.0.0.1" in email.body
    assert "PATCH" in email.body
    # no more attempts, and new events make no deliveries
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert deliveries_sweep() == 0
    pay(user)
    assert WebhookDelivery.objects.count() == 2


def test_a_success_resets_the_failing_clock(user, receiver, endpoint_for):
    endpoint, _ = endpoint_for(user, receiver.url, events=["payment.succeeded"])
    receiver.behave("fail", status=500)
    pay(user)
    receiver.behave("ok")
    pay(user)

    endpoint.refresh_from_db()
    assert endpoint.failing_since is None
