"""The events consumer runs for every transfer and payment: its statements do not grow with the
batch (one load per resource type, one INSERT that also finds the endpoints; one more INSERT only
when there are deliveries to write)."""

import pytest
from django.db import transaction

from apps.core.models import OutboxEvent
from apps.events.models import Event, WebhookDelivery
from apps.events.services import events_publish
from apps.payments.services import payment_create
from apps.wallets.services import wallet_create, wallet_transfer
from apps.wallets.tests.factories import fund
from tests.workers import tasks_published_to

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def batch(user, other_user):
    """Ten transfers and three payments whose outbox events nobody has consumed yet."""
    source = wallet_create(actor=user, user=user, currency="USD")
    destination = wallet_create(actor=other_user, user=other_user, currency="USD")
    fund(source, 10_000)
    known = set(OutboxEvent.objects.values_list("pk", flat=True))
    with tasks_published_to():
        for _ in range(10):
            wallet_transfer(
                actor=user,
                user=user,
                source_wallet_id=source.pk,
                destination_wallet_id=destination.pk,
                amount=1,
            )
        for _ in range(3):
            payment_create(actor=user, owner=user, amount=100, currency="USD", payment_method="tok_visa")
    return list(OutboxEvent.objects.exclude(pk__in=known).order_by("created_at"))


def test_a_batch_without_endpoints_costs_one_load_per_resource_type_and_one_insert(
    batch, django_assert_num_queries
):
    with transaction.atomic(), django_assert_num_queries(3):  # transactions, payments, the INSERT
        written = events_publish(outbox_events=batch)

    assert written == 10 * 2 + 3 * 2  # each transfer for both parties; created + succeeded
    assert Event.objects.filter(source_event_id__in=[event.pk for event in batch]).count() == written
    assert not WebhookDelivery.objects.exists()


def test_with_an_endpoint_the_deliveries_are_one_more_insert(
    batch, user, endpoint_for, django_assert_num_queries, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint_for(user, "http://127.0.0.1:9/h", events=["payment.succeeded", "transaction.completed"])

    with transaction.atomic(), django_assert_num_queries(4):
        events_publish(outbox_events=batch)

    assert WebhookDelivery.objects.count() == 10 + 3  # the sender's transfers, the payments' successes


def test_a_batch_published_again_writes_nothing_twice(batch):
    """The outbox lost track that the consumer ran (its ConsumedEvent rows gone): the events are
    published again, and nothing is written twice (nor does the batch fail)."""
    with transaction.atomic():
        events_publish(outbox_events=batch)
    first = set(Event.objects.values_list("pk", flat=True))

    with transaction.atomic():
        events_publish(outbox_events=batch)

    assert set(Event.objects.values_list("pk", flat=True)) == first
