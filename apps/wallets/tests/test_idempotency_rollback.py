"""Issue 17: a transfer whose transaction rolled back releases its Idempotency-Key (PostgreSQL)."""

import pytest
from django.db import connection

from apps.audit.models import AuditLog
from apps.core.models import IdempotencyRecord
from apps.wallets.models import Transaction
from apps.wallets.tests.conftest import money_state
from apps.wallets.tests.factories import WalletFactory, fund

KEY = "rent-2026-12"


def _install_failing_trigger():
    """A test-only trigger: the audit row of the transfer, written inside its transaction, fails."""
    table = AuditLog._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_fail_audit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'forced failure inside the transfer'; END $$"
        )
        cursor.execute(
            f'CREATE TRIGGER test_fail_audit BEFORE INSERT ON "{table}" '
            "FOR EACH ROW EXECUTE FUNCTION test_fail_audit()"
        )


def _drop_failing_trigger():
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TRIGGER test_fail_audit ON "{AuditLog._meta.db_table}"')
        cursor.execute("DROP FUNCTION test_fail_audit()")


@pytest.mark.django_db
def test_a_transfer_that_rolled_back_releases_its_key_and_the_retry_runs(client_for):
    source, destination = WalletFactory(), WalletFactory()
    fund(source, 1_000)
    client = client_for(source.user)
    body = {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 100}
    before = money_state()

    _install_failing_trigger()
    failed = client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "api_error"
    assert money_state() == before
    assert not IdempotencyRecord.objects.filter(key=KEY).exists()

    _drop_failing_trigger()
    retried = client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    replayed = client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert (replayed.status_code, replayed["Idempotent-Replayed"]) == (201, "true")
    assert replayed.json()["id"] == retried.json()["id"]
    assert Transaction.objects.filter(type="transfer").count() == 1
    assert client.get(f"/api/v1/wallets/{source.pk}").json()["balance"] == 900
    record = IdempotencyRecord.objects.get(key=KEY)
    assert (record.state, record.response_status) == (IdempotencyRecord.State.COMPLETED, 201)
