"""Several audit chains instead of one, and the function that picks and locks a transaction's chain.

`audit_chain_lock(chains, lock_key)` returns the chain the calling transaction appends to (its id
modulo `chains`) and that chain's newest hash, after taking the chain's transaction-level advisory
lock (key `lock_key + chain`). The read runs as a second statement of a VOLATILE function, so under
READ COMMITTED it sees the row the previous holder of the lock committed: lock and read in one round
trip. Existing rows stay in chain 0, whose genesis hash is the old single chain's.
"""

from django.db import migrations, models

FUNCTION = "audit_chain_lock"


def install_function(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")
    table = schema_editor.quote_name(apps.get_model("audit", "AuditLog")._meta.db_table)
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}(chains integer, lock_key bigint)
        RETURNS TABLE (chain integer, tip varchar) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            picked integer := mod(txid_current(), chains)::integer;
        BEGIN
            PERFORM pg_advisory_xact_lock(lock_key + picked);
            RETURN QUERY SELECT picked, (
                SELECT log.hash FROM {table} AS log WHERE log.chain = picked ORDER BY log.id DESC LIMIT 1
            );
        END;
        $$
        """,  # noqa: S608 - the table name is the model's own, quoted
        params=None,
    )


def remove_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}(integer, bigint)")


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only_triggers"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditlog",
            name="chain",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="auditlog",
            index=models.Index(fields=["chain", "-id"], name="audit_chain_tip_idx"),
        ),
        migrations.RunPython(install_function, remove_function),
    ]
