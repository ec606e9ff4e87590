"""A deposit's credit as one PostgreSQL function: one round trip for the money it moves.

`ledger_system_account_v1(code, currency, new_id)`: the id of the currency's named system account,
created (with `new_id`) the first time, as `apps.ledger.services.ledger_system_account` does: two
creators at once end with the same row, the loser waiting on the unique index. For every engine
function that posts to a system account.

`wallet_deposit_credit_v1(...)` credits a pending deposit the gateway captured: it locks the wallet,
then the transaction (the order of apps.wallets.locks; the settling service already holds both, so
this takes nothing new and guards any other caller), finds or creates the currency's
`gateway_clearing` system account (`ledger_system_account_v1`), writes the journal entry and its two postings (clearing ->
wallet), adds the amount to the wallet's balance, completes the transaction, writes its two outbox
events (`wallet.funds_added`, `transaction.completed`) and its audit row (`audit_append`), and
returns what the service answers. A frozen wallet is credited too: the card was charged, so the
money is the customer's. `apps.wallets.deposit_settlement` is its only caller and has already
decided the deposit is pending and captured; the function refuses (an internal error, not an API
refusal) a row that is not a pending deposit rather than credit it twice.
"""

from django.db import migrations

SYSTEM_ACCOUNT = "ledger_system_account_v1"
SYSTEM_ACCOUNT_ARGS = "varchar, varchar, varchar"
FUNCTION = "wallet_deposit_credit_v1"
ARGS = (
    "varchar, varchar, varchar, varchar, varchar[], "
    "varchar, varchar, varchar, varchar, varchar, varchar, integer, bigint"
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(app: str, model: str) -> str:
        return schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)

    wallet, txn = table("wallets", "Wallet"), table("wallets", "Transaction")
    account, entry, posting = (
        table("ledger", "LedgerAccount"),
        table("ledger", "JournalEntry"),
        table("ledger", "Posting"),
    )
    outbox = table("core", "OutboxEvent")
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {SYSTEM_ACCOUNT}(p_code varchar, p_currency varchar, p_new_id varchar)
        RETURNS varchar LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            v_id varchar;
        BEGIN
            SELECT a.id INTO v_id FROM {account} AS a
                WHERE a.kind = 'system' AND a.code = p_code AND a.currency = p_currency;
            IF v_id IS NULL THEN
                INSERT INTO {account} (id, kind, code, currency, created_at)
                    VALUES (p_new_id, 'system', p_code, p_currency, clock_timestamp())
                    ON CONFLICT (code, currency) WHERE kind = 'system' DO NOTHING;
                SELECT a.id INTO v_id FROM {account} AS a
                    WHERE a.kind = 'system' AND a.code = p_code AND a.currency = p_currency;
            END IF;
            RETURN v_id;
        END;
        $$
        """,  # noqa: S608 - the table name is the model's own, quoted
        params=None,
    )
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}(
            p_transaction varchar, p_gateway_reference varchar, p_entry varchar, p_clearing varchar,
            p_events varchar[], p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar,
            p_correlation_id varchar, p_ip varchar, p_user_agent varchar, p_chains integer,
            p_lock_key bigint
        ) RETURNS TABLE (updated_at timestamptz, balance bigint, wallet_user varchar)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            w {wallet}%ROWTYPE;
            t {txn}%ROWTYPE;
            v_clearing varchar;
            v_now timestamptz;
        BEGIN
            -- The wallet, then the transaction: the one lock order of apps.wallets.locks.
            SELECT * INTO w FROM {wallet} AS x
                WHERE x.id = (SELECT y.destination_wallet_id FROM {txn} AS y WHERE y.id = p_transaction)
                FOR UPDATE;
            SELECT * INTO t FROM {txn} AS y WHERE y.id = p_transaction FOR UPDATE;
            IF t.id IS NULL OR w.id IS NULL OR t.type <> 'deposit' OR t.status <> 'pending' THEN
                RAISE EXCEPTION 'wallet_deposit_credit_v1: % is not a pending deposit', p_transaction;
            END IF;

            v_now := clock_timestamp();
            v_clearing := {SYSTEM_ACCOUNT}('gateway_clearing', t.currency, p_clearing);
            INSERT INTO {entry} (id, kind, memo, correlation_id, created_at)
                VALUES (p_entry, 'deposit', left('deposit ' || t.id, 500), p_correlation_id, v_now);
            INSERT INTO {posting} (entry_id, account_id, amount, currency) VALUES
                (p_entry, v_clearing, -t.amount, t.currency),
                (p_entry, w.ledger_account_id, t.amount, t.currency);
            UPDATE {wallet} AS x SET balance = x.balance + t.amount WHERE x.id = w.id;
            UPDATE {txn} AS y SET status = 'completed', journal_entry_id = p_entry,
                gateway_reference = left(p_gateway_reference, 255), next_attempt_at = NULL,
                payment_method_token = '', updated_at = v_now
                WHERE y.id = t.id;
            -- The events as apps.core.outbox.emit_events writes them (counted as handed over; the
            -- caller hands them to the broker after commit), payloads as the consumers read them.
            INSERT INTO {outbox} (
                id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                published_at, publish_attempts, delivered_at
            ) VALUES
                (p_events[1], 'wallet.funds_added', 'wallet', w.id,
                 jsonb_build_object('wallet', w.id, 'transaction', t.id, 'amount', t.amount,
                     'currency', t.currency, 'balance', w.balance + t.amount),
                 p_correlation_id, v_now, v_now, 1, NULL),
                (p_events[2], 'transaction.completed', 'transaction', t.id,
                 jsonb_build_object('transaction', t.id, 'type', t.type, 'status', 'completed',
                     'amount', t.amount, 'currency', t.currency, 'source_wallet', t.source_wallet_id,
                     'destination_wallet', t.destination_wallet_id, 'failure_code', t.failure_code),
                 p_correlation_id, v_now, v_now, 1, NULL);
            -- Last: the audit chain's lock is held from here to commit.
            PERFORM audit_append(
                p_actor_type, p_actor_id, p_actor_repr, 'wallet.deposit.complete', 'transaction', t.id,
                jsonb_build_object('status', 'pending', 'wallet_balance', w.balance),
                jsonb_build_object('status', 'completed', 'wallet_balance', w.balance + t.amount,
                    'journal_entry', p_entry),
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
            RETURN QUERY SELECT v_now, w.balance + t.amount, w.user_id;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}({ARGS})")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {SYSTEM_ACCOUNT}({SYSTEM_ACCOUNT_ARGS})")


class Migration(migrations.Migration):
    dependencies = [("wallets", "0006_transfer_batch_function")]

    operations = [migrations.RunPython(install, remove)]
