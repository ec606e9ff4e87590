"""The MongoDB raw-log sink, against a real wire-protocol server (nx-27017) spoken to by pymongo.

Tasks run eagerly here (the test settings); tests/e2e/test_notifications_e2e.py runs the same
path through a real worker and shows that the payment path never waits for MongoDB.
"""

import json

import pytest
from django.core.management import call_command

from apps.audit import mongo
from apps.audit.rawlog import raw_log_find, raw_log_write
from apps.core.dead_letters import dead_letter_replay
from apps.core.models import DeadLetter, OutboxEvent
from tests.fakes.local_server import free_port
from tests.fakes.mongo_server import MongoServer
from tests.fakes.stripe_server import FakeStripe

pytestmark = pytest.mark.django_db


@pytest.fixture
def mongo_server(tmp_path, settings):
    """nx-27017 on a free port; MONGO_URL points at it."""
    with MongoServer(tmp_path / "mongo") as server:
        settings.MONGO_URL = server.url
        settings.MONGO_TIMEOUT_MS = 2000
        yield server
        mongo.close_clients()


@pytest.fixture
def request_as(auth_client, django_capture_on_commit_callbacks):
    """`request_as("post", path, body, correlation_id)`: an API call whose after-commit work runs."""

    def call(method, path, body=None, correlation_id=None):
        headers = {"HTTP_X_CORRELATION_ID": correlation_id} if correlation_id else {}
        with django_capture_on_commit_callbacks(execute=True):
            response = getattr(auth_client, method)(path, body or {}, format="json", **headers)
        assert response.status_code < 300, response.content
        return response.json()

    return call


def test_a_payments_whole_lifecycle_lands_in_the_sink_findable_by_payment_id(mongo_server, request_as):
    # when: authorize (manual capture), capture, refund part of it - three requests, three ids
    payment = request_as(
        "post",
        "/api/v1/payments",
        {"amount": 5000, "currency": "USD", "payment_method": "tok_visa", "capture_method": "manual"},
        correlation_id="trace-authorize",
    )
    request_as("post", f"/api/v1/payments/{payment['id']}/capture", correlation_id="trace-capture")
    refund = request_as(
        "post", f"/api/v1/payments/{payment['id']}/refunds", {"amount": 1200}, correlation_id="trace-refund"
    )

    # then: one document per gateway exchange, in order, each with its request's correlation id
    documents = raw_log_find(payment_id=payment["id"])
    exchanges = [doc for doc in documents if doc["event_type"] == "payment.gateway_exchange"]
    assert [(doc["operation"], doc["outcome"], doc["correlation_id"]) for doc in exchanges] == [
        ("authorize", "authorized", "trace-authorize"),
        ("capture", "captured", "trace-capture"),
        ("refund", "refunded", "trace-refund"),
    ]
    authorize, capture, refund_doc = exchanges
    assert authorize["request"] == {
        "operation": "authorize",
        "idempotency_key": payment["id"],
        "reference": None,
        "currency": "USD",
        "amount": 5000,
        "capture_method": "manual",
    }
    assert authorize["response"]["raw"]["id"] == payment["gateway_reference"]
    assert capture["request"]["amount"] == 5000
    assert refund_doc["request"]["refund"] == refund["id"]
    assert refund_doc["response"]["raw"]["amount_refunded"] == 1200
    # each document is its event, so it is found from either side
    assert all(OutboxEvent.objects.filter(pk=doc["_id"]).exists() for doc in exchanges)
    # a request's documents: its gateway exchange and the email it caused
    by_request = raw_log_find(correlation_id="trace-capture")
    assert [(doc["_id"], doc["event_type"]) for doc in by_request][0] == (
        capture["_id"],
        "payment.gateway_exchange",
    )
    assert [(doc["event_type"], doc["template"], doc["payment_id"]) for doc in by_request[1:]] == [
        ("notification.sent", "payment_succeeded", payment["id"])
    ]
    # and the lookups are indexed
    indexed = {tuple(index["key"]) for index in mongo.collection(mongo.GATEWAY_EXCHANGES).list_indexes()}
    assert {("payment_id",), ("correlation_id",)} <= indexed


def test_a_stripe_payments_raw_answer_reaches_the_sink_without_its_secrets(
    mongo_server, settings, request_as
):
    with FakeStripe() as stripe:
        settings.PAYMENT_GATEWAY = "stripe"
        settings.STRIPE_API_KEY, settings.STRIPE_API_BASE = stripe.api_key, stripe.url

        payment = request_as(
            "post", "/api/v1/payments", {"amount": 2000, "currency": "EUR", "payment_method": "tok_visa"}
        )

    [document] = [
        d for d in raw_log_find(payment_id=payment["id"]) if d["event_type"] == "payment.gateway_exchange"
    ]
    raw = document["response"]["raw"]
    assert raw["object"] == "payment_intent"
    assert raw["id"] == payment["gateway_reference"]
    assert raw["client_secret"] == "[scrubbed]"
    assert "_secret_" not in json.dumps(document, default=str)
    assert stripe.api_key not in json.dumps(document, default=str)


def test_emails_outcomes_are_logged_without_the_address(mongo_server, request_as, user):
    wallet = request_as("post", "/api/v1/wallets", {"currency": "USD"})
    request_as(
        "post", f"/api/v1/wallets/{wallet['id']}/deposits", {"amount": 900, "payment_method": "tok_visa"}
    )

    logs = list(mongo.collection(mongo.NOTIFICATION_LOGS).find({"user_id": user.pk}))

    assert [(log["template"], log["status"], log["attempts"]) for log in logs] == [
        ("deposit_completed", "sent", 1)
    ]
    assert logs[0]["notification_id"].startswith("ntf_")
    assert user.email not in json.dumps(logs, default=str)


def test_writing_one_event_twice_keeps_one_document(mongo_server, request_as):
    payment = request_as(
        "post", "/api/v1/payments", {"amount": 300, "currency": "USD", "payment_method": "tok_visa"}
    )
    event = OutboxEvent.objects.get(event_type="payment.gateway_exchange", payload__payment=payment["id"])

    assert raw_log_write(event_id=event.pk) is True
    assert raw_log_write(event_id=event.pk) is True

    assert mongo.collection(mongo.GATEWAY_EXCHANGES).count_documents({"payment_id": payment["id"]}) == 1


def test_mongodb_down_loses_nothing_a_dead_letter_replays_the_write(tmp_path, settings, request_as):
    # given: MONGO_URL names a server that is down
    server = MongoServer(tmp_path / "mongo")
    settings.MONGO_URL, settings.MONGO_TIMEOUT_MS = f"mongodb://127.0.0.1:{free_port()}/paydesk_raw", 200
    settings.RAW_LOG_MAX_ATTEMPTS, settings.RAW_LOG_RETRY_BASE_SECONDS = 2, 0

    # when: a payment is made
    payment = request_as(
        "post", "/api/v1/payments", {"amount": 700, "currency": "USD", "payment_method": "tok_visa"}
    )

    # then: the payment went through; the write was tried, then dead-lettered with its event
    assert payment["status"] == "succeeded"
    event = OutboxEvent.objects.get(event_type="payment.gateway_exchange", payload__payment=payment["id"])
    letter = DeadLetter.objects.get(kind="raw_log", reference=event.pk)
    assert letter.attempts == 2
    assert "ServerSelectionTimeoutError" in letter.reason

    # when: MongoDB is back and the dead letter is replayed
    with server:
        settings.MONGO_URL = server.url
        assert dead_letter_replay(dead_letter_id=letter.pk) is True

        # then: the document is there, as if nothing had happened
        [document] = raw_log_find(payment_id=payment["id"])
        assert document["_id"] == event.pk
        mongo.close_clients()


def test_with_the_sink_off_nothing_is_queued_or_written(settings, request_as):
    settings.MONGO_URL = ""

    payment = request_as(
        "post", "/api/v1/payments", {"amount": 700, "currency": "USD", "payment_method": "tok_visa"}
    )

    event = OutboxEvent.objects.get(event_type="payment.gateway_exchange", payload__payment=payment["id"])
    assert raw_log_write(event_id=event.pk) is False
    assert not DeadLetter.objects.filter(kind="raw_log").exists()


def test_raw_logs_command_prints_a_payments_documents(mongo_server, request_as, capsys):
    payment = request_as(
        "post", "/api/v1/payments", {"amount": 450, "currency": "USD", "payment_method": "tok_visa"}
    )

    call_command("raw_logs", "--payment", payment["id"])

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(line["payment_id"], line.get("operation") or line.get("template")) for line in lines] == [
        (payment["id"], "authorize"),
        (payment["id"], "payment_succeeded"),
    ]


def test_a_deliverys_events_are_written_by_one_task_in_one_bulk_write(mongo_server, request_as):
    # given: several payments' gateway exchanges, not yet copied
    payments = [
        request_as(
            "post", "/api/v1/payments", {"amount": 100 + n, "currency": "USD", "payment_method": "tok_visa"}
        )
        for n in range(3)
    ]
    ids = list(
        OutboxEvent.objects.filter(
            event_type="payment.gateway_exchange", payload__payment__in=[p["id"] for p in payments]
        ).values_list("pk", flat=True)
    )
    mongo.collection(mongo.GATEWAY_EXCHANGES).delete_many({})

    # when: one task writes them all, twice (a redelivery)
    from apps.audit.tasks import write_raw_logs

    assert write_raw_logs.apply(args=[ids]).get() == 3
    assert write_raw_logs.apply(args=[ids]).get() == 3

    # then: one document each
    documents = list(mongo.collection(mongo.GATEWAY_EXCHANGES).find({}))
    assert sorted(d["_id"] for d in documents) == sorted(ids)


def test_with_the_sink_off_its_events_are_not_handed_to_a_worker(settings, request_as):
    from django.test import override_settings

    from apps.core import outbox

    settings.MONGO_URL = ""
    with override_settings(OUTBOX_RELAY=True):
        payment = request_as(
            "post", "/api/v1/payments", {"amount": 700, "currency": "USD", "payment_method": "tok_visa"}
        )
        event = OutboxEvent.objects.get(event_type="payment.gateway_exchange", payload__payment=payment["id"])
        assert outbox.consumers_for(event.event_type) == {}
        outbox.relay_batch(batch_size=100)
    event.refresh_from_db()
    assert event.published_at is not None
    assert event.delivered_at is not None
