"""The triggers of migration 0002: the audit table takes INSERTs only, whoever writes."""

import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditLog
from apps.audit.tests.factories import AuditRecordFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def row() -> AuditLog:
    return AuditRecordFactory(action="payment.capture", after={"status": "succeeded"})


def _refused(attempt) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        attempt()


def _save_changed(row: AuditLog) -> None:
    row.after = {"status": "refunded"}
    row.save()


def test_the_orm_cannot_change_a_record(row):
    _refused(lambda: _save_changed(row))
    _refused(lambda: AuditLog.objects.filter(pk=row.pk).update(action="payment.void"))

    assert AuditLog.objects.get(pk=row.pk).after == {"status": "succeeded"}


def test_the_orm_cannot_delete_a_record(row):
    _refused(lambda: AuditLog.objects.get(pk=row.pk).delete())
    _refused(lambda: AuditLog.objects.all().delete())

    assert AuditLog.objects.filter(pk=row.pk).exists()


def test_raw_sql_cannot_change_or_delete_a_record(row):
    table = AuditLog._meta.db_table

    def raw(sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, [row.pk])

    _refused(lambda: raw(f"UPDATE {table} SET action = 'payment.void' WHERE id = %s"))  # noqa: S608
    _refused(lambda: raw(f"DELETE FROM {table} WHERE id = %s"))  # noqa: S608

    assert AuditLog.objects.get(pk=row.pk).action == "payment.capture"


def test_new_records_can_still_be_appended(row):
    AuditRecordFactory()

    assert AuditLog.objects.count() == 2
