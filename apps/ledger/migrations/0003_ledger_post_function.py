"""One journal entry in SQL, for the money engine's functions (apps.wallets.engine).

`ledger_post_v1(entry, kind, memo, currency, accounts, amounts, correlation_id, at)` writes the
entry and one posting per account with its signed amount, in the order given, leaving out zero
lines; the deferred trigger of migration 0002 refuses the commit if they do not balance. It is
`apps.ledger.services.ledger_post` for SQL callers: every engine function that books money
writes its entry through it (directly, or through the wallet leg `wallet_post_v1`).
"""

from django.db import migrations

FUNCTION = "ledger_post_v1"
ARGS = "varchar, varchar, varchar, varchar, varchar[], bigint[], varchar, timestamptz"


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(model: str) -> str:
        return schema_editor.quote_name(apps.get_model("ledger", model)._meta.db_table)

    entry, posting = table("JournalEntry"), table("Posting")
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}(
            p_entry varchar, p_kind varchar, p_memo varchar, p_currency varchar,
            p_accounts varchar[], p_amounts bigint[], p_correlation_id varchar, p_now timestamptz
        ) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            INSERT INTO {entry} (id, kind, memo, correlation_id, created_at)
                VALUES (p_entry, p_kind, left(p_memo, 500), p_correlation_id, p_now);
            INSERT INTO {posting} (entry_id, account_id, amount, currency)
                SELECT p_entry, line.account, line.amount, p_currency
                FROM unnest(p_accounts, p_amounts) WITH ORDINALITY AS line(account, amount, position)
                WHERE line.amount <> 0
                ORDER BY line.position;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}({ARGS})")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_integrity_triggers")]

    operations = [migrations.RunPython(install, remove)]
