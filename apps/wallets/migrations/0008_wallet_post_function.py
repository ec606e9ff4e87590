"""One wallet leg of a money movement in SQL, written once, and the deposit credit that uses it.

`wallet_post_v1(...)` is what every engine function did again for the wallet it moves: given the
wallet's row (locked by the caller), a signed amount (what the wallet gains; negative: what it
pays) and the entry's other side, it
- refuses a frozen wallet (`PW002`, naming `p_frozen_param`) unless that is NULL (a credit that
  must land whatever the wallet's status: a refund, a deposit the card already paid), and a
  wallet holding less than it pays (`PW004`, param `amount`), before writing anything;
- writes the journal entry (`p_kind`, `p_memo`) and its postings (`ledger_post_v1`, migration
  ledger 0003): the wallet's line and the counter lines (`p_counters`, with `p_counter_amounts`,
  or the one counter taking `-p_amount`), the paying side first; a zero amount writes only the
  counter lines (a hold captured whole);
- moves the wallet's balance and writes its `wallet.funds_deducted` / `wallet.funds_added` event
  (`{wallet, amount, currency, balance}` and what `p_payload` adds: the reason, the transaction);
- returns the wallet's new balance.
Like every function here it writes its outbox row waiting for the relay (`published_at` NULL,
`publish_attempts` 0), as the outbox's own trigger (migration core 0004) makes every row anyway.

`wallet_deposit_credit_v2(...)` replaces `wallet_deposit_credit_v1` (migration 0007), the same
movement through `wallet_post_v1`; the reverse of this migration restores v1.
"""

from importlib import import_module

from django.db import migrations

LEG = "wallet_post_v1"
LEG_ARGS = (
    "{wallet}, bigint, varchar[], bigint[], varchar, varchar, varchar, varchar, jsonb, varchar, "
    "varchar, timestamptz"
)
CREDIT = "wallet_deposit_credit_v2"
CREDIT_ARGS = (
    "varchar, varchar, varchar, varchar, varchar[], "
    "varchar, varchar, varchar, varchar, varchar, varchar, integer, bigint"
)
PREVIOUS = import_module("apps.wallets.migrations.0007_deposit_credit_function")


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(app: str, model: str) -> str:
        return schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)

    wallet, txn = table("wallets", "Wallet"), table("wallets", "Transaction")
    outbox = table("core", "OutboxEvent")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {PREVIOUS.FUNCTION}({PREVIOUS.ARGS})")
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {LEG}(
            p_wallet {wallet}, p_amount bigint, p_counters varchar[], p_counter_amounts bigint[],
            p_entry varchar, p_kind varchar, p_memo varchar, p_event varchar, p_payload jsonb,
            p_frozen_param varchar, p_correlation_id varchar, p_now timestamptz
        ) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            v_balance bigint := p_wallet.balance;
            v_counter_amounts bigint[] := coalesce(p_counter_amounts, ARRAY[-p_amount]);
        BEGIN
            IF p_frozen_param IS NOT NULL AND p_wallet.status <> 'active' THEN
                RAISE EXCEPTION USING ERRCODE = 'PW002', COLUMN = p_frozen_param,
                    MESSAGE = 'Wallet ' || p_wallet.id || ' is frozen.';
            END IF;
            IF p_amount < 0 AND p_wallet.balance + p_amount < 0 THEN
                RAISE EXCEPTION USING ERRCODE = 'PW004', COLUMN = 'amount',
                    MESSAGE = 'The source wallet''s balance is lower than the amount.';
            END IF;

            -- The paying side first: the wallet's line before its counters when it pays, after them
            -- when it is paid.
            IF p_amount < 0 THEN
                PERFORM ledger_post_v1(p_entry, p_kind, p_memo, p_wallet.currency,
                    array_prepend(p_wallet.ledger_account_id, p_counters), array_prepend(p_amount, v_counter_amounts),
                    p_correlation_id, p_now);
            ELSE
                PERFORM ledger_post_v1(p_entry, p_kind, p_memo, p_wallet.currency,
                    array_append(p_counters, p_wallet.ledger_account_id), array_append(v_counter_amounts, p_amount),
                    p_correlation_id, p_now);
            END IF;
            IF p_amount <> 0 THEN
                UPDATE {wallet} AS w SET balance = w.balance + p_amount WHERE w.id = p_wallet.id
                    RETURNING w.balance INTO v_balance;
                INSERT INTO {outbox} (
                    id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                    published_at, publish_attempts, delivered_at
                ) VALUES (
                    p_event, CASE WHEN p_amount < 0 THEN 'wallet.funds_deducted' ELSE 'wallet.funds_added' END,
                    'wallet', p_wallet.id,
                    jsonb_build_object('wallet', p_wallet.id, 'amount', abs(p_amount),
                        'currency', p_wallet.currency, 'balance', v_balance) || coalesce(p_payload, '{{}}'::jsonb),
                    p_correlation_id, p_now, NULL, 0, NULL
                );
            END IF;
            RETURN v_balance;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {CREDIT}(
            p_transaction varchar, p_gateway_reference varchar, p_entry varchar, p_clearing varchar,
            p_events varchar[], p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar,
            p_correlation_id varchar, p_ip varchar, p_user_agent varchar, p_chains integer,
            p_lock_key bigint
        ) RETURNS TABLE (updated_at timestamptz, balance bigint, wallet_user varchar)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            w {wallet}%ROWTYPE;
            t {txn}%ROWTYPE;
            v_balance bigint;
            v_now timestamptz;
        BEGIN
            -- The wallet, then the transaction: the one lock order of apps.wallets.locks.
            SELECT * INTO w FROM {wallet} AS x
                WHERE x.id = (SELECT y.destination_wallet_id FROM {txn} AS y WHERE y.id = p_transaction)
                FOR UPDATE;
            SELECT * INTO t FROM {txn} AS y WHERE y.id = p_transaction FOR UPDATE;
            IF t.id IS NULL OR w.id IS NULL OR t.type <> 'deposit' OR t.status <> 'pending' THEN
                RAISE EXCEPTION '{CREDIT}: % is not a pending deposit', p_transaction;
            END IF;

            v_now := clock_timestamp();
            -- Even into a frozen wallet (no frozen check): the card was charged, the money is theirs.
            v_balance := {LEG}(w, t.amount,
                ARRAY[ledger_system_account_v1('gateway_clearing', t.currency, p_clearing)], NULL,
                p_entry, 'deposit', 'deposit ' || t.id, p_events[1], jsonb_build_object('transaction', t.id),
                NULL, p_correlation_id, v_now);
            UPDATE {txn} AS y SET status = 'completed', journal_entry_id = p_entry,
                gateway_reference = left(p_gateway_reference, 255), next_attempt_at = NULL,
                payment_method_token = '', updated_at = v_now
                WHERE y.id = t.id;
            INSERT INTO {outbox} (
                id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                published_at, publish_attempts, delivered_at
            ) VALUES (
                p_events[2], 'transaction.completed', 'transaction', t.id,
                jsonb_build_object('transaction', t.id, 'type', t.type, 'status', 'completed',
                    'amount', t.amount, 'currency', t.currency, 'source_wallet', t.source_wallet_id,
                    'destination_wallet', t.destination_wallet_id, 'failure_code', t.failure_code),
                p_correlation_id, v_now, NULL, 0, NULL
            );
            -- Last: the audit chain's lock is held from here to commit.
            PERFORM audit_append(
                p_actor_type, p_actor_id, p_actor_repr, 'wallet.deposit.complete', 'transaction', t.id,
                jsonb_build_object('status', 'pending', 'wallet_balance', w.balance),
                jsonb_build_object('status', 'completed', 'wallet_balance', v_balance, 'journal_entry', p_entry),
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
            RETURN QUERY SELECT v_now, v_balance, w.user_id;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    wallet = schema_editor.quote_name(apps.get_model("wallets", "Wallet")._meta.db_table)
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {CREDIT}({CREDIT_ARGS})")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {LEG}({LEG_ARGS.format(wallet=wallet)})")
    PREVIOUS.install(apps, schema_editor)  # back to wallet_deposit_credit_v1


class Migration(migrations.Migration):
    dependencies = [("wallets", "0007_deposit_credit_function"), ("ledger", "0003_ledger_post_function")]

    operations = [migrations.RunPython(install, remove)]
