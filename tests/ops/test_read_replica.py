"""The read-replica router against a real streaming replica (PostgreSQL hot standby).

`streaming_replica` points `default` at a primary of the tests' own (a copy of the test database)
and adds `replica`, a standby streaming from it. Pausing the standby's WAL replay makes it lag on
purpose, so which server answered shows in the data: the replica still has the past.
"""

import uuid

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.accounts.models import Roles
from apps.accounts.services import auth_session_start
from apps.accounts.tests.factories import UserFactory
from apps.core import db_routing
from apps.core.health import run_readiness_checks
from apps.payments.models import Payment
from apps.payments.services import payment_create
from tests.ops.postgres_servers import StreamingPair
from tests.ops.tasks import read_write_read

# Committed data (the replica only ever sees commits); `replica` mirrors `default` for the test
# machinery, so only the primary is flushed after each test and the flush replicates.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "replica"])]


@pytest.fixture(scope="module")
def streaming_replica(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        default = connections["default"].settings_dict
        saved = {"HOST": default["HOST"], "PORT": default["PORT"]}
        source = f"postgresql://{default['USER']}@{default['HOST'] or '127.0.0.1'}:{default['PORT'] or 5432}"
        pair = StreamingPair.start(source_url=f"{source}/{default['NAME']}", dbname=default["NAME"])
        for connection in connections.all():
            connection.close()
        default.update(HOST="127.0.0.1", PORT=pair.primary.port)
        connections.settings[db_routing.REPLICA] = {
            **default,
            "PORT": pair.replica.port,
            "TEST": {**default["TEST"], "MIRROR": "default"},
        }
        try:
            yield pair
        finally:
            pair.resume_replay()
            connections[db_routing.REPLICA].close()
            del connections[db_routing.REPLICA]
            del connections.settings[db_routing.REPLICA]
            connections["default"].close()
            default.update(saved)
            pair.stop()


@pytest.fixture(autouse=True)
def _fresh_replica_connection(streaming_replica):
    """Each test opens its own replica connection: the standby terminates sessions that conflict
    with what it replays (the previous test's flush), as hot standbys do."""
    connections[db_routing.REPLICA].close()
    yield
    connections[db_routing.REPLICA].close()


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_session_start(user=user).tokens.access}")
    return client


def _card_payment(owner, description="first") -> Payment:
    with db_routing.unit_of_work():
        return payment_create(
            actor=owner,
            owner=owner,
            amount=1250,
            currency="USD",
            payment_method="tok_visa",
            description=description,
        )


def test_reads_go_to_the_replica_until_the_unit_of_work_writes(streaming_replica):
    # given a payment both servers hold, then a change the lagging replica has not replayed
    owner = UserFactory()
    payment = _card_payment(owner)
    streaming_replica.wait_until_caught_up()
    streaming_replica.pause_replay()
    streaming_replica.primary.query(
        streaming_replica.dbname,
        "UPDATE payments_payment SET description = 'changed' WHERE id = %s",
        (payment.pk,),
    )

    # when a unit of work only reads, then it reads the replica: the past
    with db_routing.unit_of_work():
        read = Payment.objects.get(pk=payment.pk)
    assert (read._state.db, read.description) == ("replica", "first")

    # when a unit of work has written, then its reads are the primary's: the present
    with db_routing.unit_of_work():
        Payment.objects.filter(pk=payment.pk).update(metadata={"seen": True})
        read = Payment.objects.get(pk=payment.pk)
    assert (read._state.db, read.description) == ("default", "changed")

    # and once the replica replays, a reading unit of work sees the change there
    streaming_replica.resume_replay()
    streaming_replica.wait_until_caught_up()
    with db_routing.unit_of_work():
        read = Payment.objects.get(pk=payment.pk)
    assert (read._state.db, read.description) == ("replica", "changed")


def test_a_request_that_wrote_reads_its_own_writes_while_others_read_the_lagging_replica(streaming_replica):
    owner = UserFactory()
    reviewer = UserFactory(is_staff=True, roles=[Roles.REVIEWER])  # sees every payment
    owner_client, reviewer_client = _client(owner), _client(reviewer)
    streaming_replica.wait_until_caught_up()
    streaming_replica.pause_replay()

    # when the owner creates a payment while the replica lags
    created = owner_client.post(
        "/api/v1/payments",
        {"amount": 2000, "currency": "USD", "payment_method": "tok_visa"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )

    # then the request read back what it wrote (from the primary): the replica has no such row
    assert created.status_code == 201, created.content
    payment_id = created.json()["id"]
    assert created.json()["status"] == "succeeded"
    assert streaming_replica.replica.query(
        streaming_replica.dbname, "SELECT count(*) FROM payments_payment WHERE id = %s", (payment_id,)
    ) == (0,)
    # and the owner's next request still finds it (read-your-writes for the same credentials)
    assert owner_client.get(f"/api/v1/payments/{payment_id}").status_code == 200
    # while a reader who wrote nothing is served by the replica, which has not seen it yet
    assert reviewer_client.get(f"/api/v1/payments/{payment_id}").status_code == 404

    streaming_replica.resume_replay()
    streaming_replica.wait_until_caught_up()
    assert reviewer_client.get(f"/api/v1/payments/{payment_id}").json()["status"] == "succeeded"


def test_money_moving_services_never_touch_the_replica(streaming_replica):
    owner = UserFactory()
    streaming_replica.wait_until_caught_up()
    with (
        CaptureQueriesContext(connections["replica"]) as on_replica,
        CaptureQueriesContext(connections["default"]) as on_primary,
    ):
        payment = _card_payment(owner, description="locked")
    assert payment.status == "succeeded"
    assert on_replica.captured_queries == []
    statements = [query["sql"] for query in on_primary.captured_queries]
    assert any("FOR UPDATE" in sql for sql in statements)
    assert any(sql.startswith("INSERT") for sql in statements)


def test_each_celery_task_starts_on_the_replica_and_stays_on_the_primary_once_it_writes(streaming_replica):
    payment = _card_payment(UserFactory(), description="task")
    streaming_replica.wait_until_caught_up()
    with db_routing.unit_of_work() as caller:
        caller.wrote = True  # the caller itself is pinned: that must not leak into its tasks
        first = read_write_read.apply(args=[payment.pk]).get()
        second = read_write_read.apply(args=[payment.pk]).get()
    assert first == second == ["replica", "default"]


def test_readiness_names_the_streaming_replica(streaming_replica):
    ready, checks = run_readiness_checks()
    assert ready
    assert checks["replica"] == {
        "status": "ok",
        "latency_ms": checks["replica"]["latency_ms"],
        "mode": "streaming",
    }
