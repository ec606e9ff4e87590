from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.audit.management.commands import verify_audit_chain
from apps.audit.models import AuditLog
from apps.audit.tests.factories import AuditRecordFactory

pytestmark = pytest.mark.django_db


def _verify(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("verify_audit_chain", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _behind_the_triggers_back(sql: str, params: list) -> None:
    """What someone with direct database access could do; the test's transaction undoes it all."""
    table = AuditLog._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        cursor.execute(sql.format(table=table), params)
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def test_an_intact_chain_is_reported_ok():
    AuditRecordFactory.create_batch(60)

    out, _ = _verify("--batch-size", "7")

    assert out.strip() == "audit chain OK: 60 rows"


def test_an_empty_audit_trail_is_ok():
    out, _ = _verify()

    assert out.strip() == "audit chain OK: 0 rows"


def test_a_row_altered_behind_the_applications_back_is_named():
    # given
    rows = AuditRecordFactory.create_batch(5, after={"status": "denied"})
    altered = rows[2]
    _behind_the_triggers_back(
        "UPDATE {table} SET after = %s::jsonb WHERE id = %s", ['{"status": "approved"}', altered.pk]
    )

    # when / then
    with pytest.raises(CommandError, match=rf"hash mismatch at id {altered.pk}: row altered") as error:
        _verify()
    assert "1 problem(s) in 5 rows" in str(error.value)


def test_a_deleted_row_is_named_by_the_ids_around_it():
    rows = AuditRecordFactory.create_batch(5)
    _behind_the_triggers_back("DELETE FROM {table} WHERE id = %s", [rows[3].pk])

    with pytest.raises(CommandError, match=rf"chain break between ids {rows[2].pk} and {rows[4].pk}"):
        _verify()


def test_deleting_the_oldest_rows_is_detected():
    rows = AuditRecordFactory.create_batch(4)
    _behind_the_triggers_back("DELETE FROM {table} WHERE id <= %s", [rows[1].pk])

    with pytest.raises(CommandError, match=rf"chain break before id {rows[2].pk}"):
        _verify()


def test_a_rewritten_row_with_a_recomputed_hash_still_breaks_the_chain():
    # given: the forger fixes the altered row's own hash, but cannot fix its successor's prev_hash
    rows = AuditRecordFactory.create_batch(3)
    _behind_the_triggers_back("UPDATE {table} SET hash = %s WHERE id = %s", ["f" * 64, rows[1].pk])

    with pytest.raises(CommandError) as error:
        _verify()

    message = str(error.value)
    assert f"hash mismatch at id {rows[1].pk}" in message
    assert f"chain break between ids {rows[1].pk} and {rows[2].pk}" in message


def test_progress_is_reported_on_stderr(monkeypatch):
    monkeypatch.setattr(verify_audit_chain, "PROGRESS_EVERY", 10)
    AuditRecordFactory.create_batch(25)

    out, err = _verify()

    assert err.splitlines() == ["checked 10 of 25 rows", "checked 20 of 25 rows"]
    assert out.strip() == "audit chain OK: 25 rows"


def test_help_explains_what_is_checked():
    parser = verify_audit_chain.Command().create_parser("manage.py", "verify_audit_chain")

    help_text = " ".join(parser.format_help().split())

    assert "hash mismatch" in help_text
    assert "chain break" in help_text
    assert "--batch-size" in help_text


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(CommandError, match="--batch-size"):
        _verify("--batch-size", "0")
