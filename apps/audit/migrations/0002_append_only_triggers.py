"""Triggers that refuse UPDATE and DELETE on the audit log, whoever asks (ORM, raw SQL, psql).

TRUNCATE is deliberately left alone: the test framework empties tables with it between tests. In
production the application's database role should not own the table nor hold TRUNCATE on it; the
hash chain (`manage.py verify_audit_chain`) catches whatever gets past the triggers anyway.
"""

from django.db import migrations

FUNCTION = "audit_log_refuse_change"
TRIGGER = "audit_log_append_only"


def _table(apps, schema_editor) -> str:
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError(
            f"Paydesk runs on PostgreSQL only, not {schema_editor.connection.vendor}: set DATABASE_URL "
            "to a PostgreSQL server (make run starts an embedded one)"
        )
    return schema_editor.quote_name(apps.get_model("audit", "AuditLog")._meta.db_table)


def install_triggers(apps, schema_editor):
    table = _table(apps, schema_editor)
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit log is append-only: % refused', TG_OP;
        END;
        $$
        """,
        params=None,  # no interpolation: the `%` above is plpgsql's
    )
    schema_editor.execute(
        f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
    )


def remove_triggers(apps, schema_editor):
    table = _table(apps, schema_editor)
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {table}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(install_triggers, remove_triggers)]
