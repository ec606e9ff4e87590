"""The journal's rules, enforced by the database whoever writes (ORM, raw SQL, psql).

- Entries and postings are append-only: UPDATE and DELETE are refused.
- A deferred constraint trigger checks, at commit, that each new posting's
  currency is its account's and that its entry's postings sum to zero per currency. Deferred,
  because an entry is written one posting at a time and only balances once all are in.

TRUNCATE is left alone (the test framework empties tables with it); `manage.py verify_ledger`
proves the books whatever got past the triggers.
"""

from django.db import migrations

REFUSE_FUNCTION = "ledger_refuse_change"
BALANCE_FUNCTION = "ledger_entry_must_balance"
BALANCE_TRIGGER = "ledger_posting_balanced"


def _tables(apps, schema_editor) -> dict[str, str]:
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError(
            f"Paydesk runs on PostgreSQL only, not {schema_editor.connection.vendor}: set DATABASE_URL "
            "to a PostgreSQL server (make run starts an embedded one)"
        )
    return {
        name: schema_editor.quote_name(apps.get_model("ledger", name)._meta.db_table)
        for name in ("JournalEntry", "Posting", "LedgerAccount")
    }


def install(apps, schema_editor):
    tables = _tables(apps, schema_editor)
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {REFUSE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
        END;
        $$
        """,
        params=None,
    )
    for model in ("JournalEntry", "Posting"):
        schema_editor.execute(
            f"CREATE TRIGGER {REFUSE_FUNCTION}_trg BEFORE UPDATE OR DELETE ON {tables[model]} "
            f"FOR EACH ROW EXECUTE FUNCTION {REFUSE_FUNCTION}()"
        )
    # Only quoted table names from the models are interpolated: nothing comes from input.
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {BALANCE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            bad record;
        BEGIN
            IF NEW.currency <> (SELECT currency FROM {tables["LedgerAccount"]} WHERE id = NEW.account_id) THEN
                RAISE EXCEPTION 'posting % on % is not in its account''s currency', NEW.id, NEW.account_id
                    USING ERRCODE = 'check_violation';
            END IF;
            SELECT currency, SUM(amount) AS total INTO bad FROM {tables["Posting"]}
                WHERE entry_id = NEW.entry_id GROUP BY currency HAVING SUM(amount) <> 0 LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'journal entry % does not balance: postings sum to % %',
                    NEW.entry_id, bad.total, bad.currency USING ERRCODE = 'check_violation';
            END IF;
            RETURN NULL;
        END;
        $$
        """,  # noqa: S608
        params=None,
    )
    schema_editor.execute(
        f"CREATE CONSTRAINT TRIGGER {BALANCE_TRIGGER} AFTER INSERT ON {tables['Posting']} "
        f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {BALANCE_FUNCTION}()"
    )


def remove(apps, schema_editor):
    tables = _tables(apps, schema_editor)
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {BALANCE_TRIGGER} ON {tables['Posting']}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {BALANCE_FUNCTION}()")
    for model in ("JournalEntry", "Posting"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {REFUSE_FUNCTION}_trg ON {tables[model]}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {REFUSE_FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
