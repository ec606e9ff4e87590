"""Batch transfers, and a transfer's rules in one function that single and batch calls share.

- `wallet_transfer_apply(...)`: one transfer between wallets the caller has already locked. It
  checks (same wallet, ownership, frozen, currency, funds) and either returns the refusal (SQLSTATE,
  parameter, message) having written nothing, or writes the entry, postings, balances, transaction
  row, outbox events and audit row and returns what the API answers.
- `wallet_transfer_v2(...)`: a single transfer: locks both wallets in id order, applies, and raises
  a refusal (replaces `wallet_transfer_v1`).
- `wallet_transfer_batch_v1(...)`: a batch: locks every wallet of the batch once, in id order,
  applies each item in input order and, when `atomic`, raises the first refusal with its parameter
  named `transfers[i].param` (the caller's transaction then rolls back whatever the batch wrote);
  otherwise returns each item's refusal or result. Completed items are announced together by one
  `transfer_batch.completed` event (their own events carry `batch`), so a batch notifies each
  party once, not once per item.
"""

from importlib import import_module

from django.db import migrations

APPLY = "wallet_transfer_apply"
APPLY_ARGS = (
    "varchar, varchar, varchar, bigint, varchar, varchar, varchar, varchar[], varchar, "
    "varchar, varchar, varchar, varchar, varchar, varchar, integer, bigint"
)
SINGLE = "wallet_transfer_v2"
SINGLE_ARGS = (
    "varchar, varchar, varchar, bigint, varchar, varchar, varchar, varchar[], "
    "varchar, varchar, varchar, varchar, varchar, varchar, integer, bigint"
)
BATCH = "wallet_transfer_batch_v1"
BATCH_ARGS = "varchar, jsonb, boolean, varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, integer, bigint"
OLD = "wallet_transfer_v1"


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(app: str, model: str) -> str:
        return schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)

    wallet, txn = table("wallets", "Wallet"), table("wallets", "Transaction")
    entry, posting = table("ledger", "JournalEntry"), table("ledger", "Posting")
    outbox = table("core", "OutboxEvent")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {OLD}({SINGLE_ARGS})")
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {APPLY}(
            p_user varchar, p_source varchar, p_destination varchar, p_amount bigint,
            p_description varchar, p_transaction varchar, p_entry varchar, p_events varchar[],
            p_batch varchar, p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar,
            p_correlation_id varchar, p_ip varchar, p_user_agent varchar, p_chains integer,
            p_lock_key bigint,
            OUT refusal varchar, OUT refused_param varchar, OUT refusal_message varchar,
            OUT currency varchar, OUT created_at timestamptz, OUT source_user varchar,
            OUT destination_user varchar
        ) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            src {wallet}%ROWTYPE;
            dst {wallet}%ROWTYPE;
            v_now timestamptz;
            v_common jsonb;
            v_batch jsonb := CASE WHEN p_batch IS NULL THEN '{{}}'::jsonb
                ELSE jsonb_build_object('batch', p_batch) END;
        BEGIN
            IF p_source = p_destination THEN
                refusal := 'PW005'; refused_param := 'destination_wallet';
                refusal_message := 'The source and destination wallets must differ.';
                RETURN;
            END IF;
            -- The caller holds both rows' locks; read them now (a batch's earlier items moved them).
            SELECT * INTO src FROM {wallet} AS w WHERE w.id = p_source;
            SELECT * INTO dst FROM {wallet} AS w WHERE w.id = p_destination;
            IF src.id IS NULL OR src.user_id <> p_user THEN
                refusal := 'PW001'; refused_param := 'source_wallet';
                refusal_message := 'No such wallet: ''' || p_source || '''';
            ELSIF dst.id IS NULL THEN
                refusal := 'PW001'; refused_param := 'destination_wallet';
                refusal_message := 'No such wallet: ''' || p_destination || '''';
            ELSIF src.status <> 'active' THEN
                refusal := 'PW002'; refused_param := 'source_wallet';
                refusal_message := 'Wallet ' || src.id || ' is frozen.';
            ELSIF dst.status <> 'active' THEN
                refusal := 'PW002'; refused_param := 'destination_wallet';
                refusal_message := 'Wallet ' || dst.id || ' is frozen.';
            ELSIF src.currency <> dst.currency THEN
                refusal := 'PW003'; refused_param := 'destination_wallet';
                refusal_message := 'The source wallet holds ' || src.currency
                    || ' but the destination holds ' || dst.currency || '.';
            ELSIF src.balance < p_amount THEN
                refusal := 'PW004'; refused_param := 'amount';
                refusal_message := 'The source wallet''s balance is lower than the amount.';
            END IF;
            IF refusal IS NOT NULL THEN
                RETURN;
            END IF;

            v_now := clock_timestamp();
            INSERT INTO {entry} (id, kind, memo, correlation_id, created_at)
                VALUES (p_entry, 'transfer', left('transfer ' || src.id || ' -> ' || dst.id, 500),
                        p_correlation_id, v_now);
            INSERT INTO {posting} (entry_id, account_id, amount, currency) VALUES
                (p_entry, src.ledger_account_id, -p_amount, src.currency),
                (p_entry, dst.ledger_account_id, p_amount, src.currency);
            UPDATE {wallet} AS w SET balance = w.balance + CASE WHEN w.id = src.id THEN -p_amount ELSE p_amount END
                WHERE w.id IN (src.id, dst.id);
            INSERT INTO {txn} (
                id, type, status, amount, currency, description, failure_code, failure_message,
                gateway_reference, created_at, updated_at, journal_entry_id, destination_wallet_id,
                source_wallet_id, attempts, gateway, next_attempt_at, payment_method_token, reconcile_reason,
                pending_operation, risk_reasons
            ) VALUES (
                p_transaction, 'transfer', 'completed', p_amount, src.currency, p_description, NULL, NULL,
                '', v_now, v_now, p_entry, dst.id, src.id, 0, '', NULL, '', '', '', '[]'::jsonb
            );
            -- The events as apps.core.outbox.emit_events writes them (counted as handed over; the
            -- caller hands them to the broker after commit), payloads as the consumers read them.
            v_common := jsonb_build_object('transaction', p_transaction, 'amount', p_amount, 'currency', src.currency);
            INSERT INTO {outbox} (
                id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                published_at, publish_attempts, delivered_at
            ) VALUES
                (p_events[1], 'wallet.funds_deducted', 'wallet', src.id,
                 v_common || v_batch || jsonb_build_object('wallet', src.id, 'balance', src.balance - p_amount),
                 p_correlation_id, v_now, v_now, 1, NULL),
                (p_events[2], 'wallet.funds_added', 'wallet', dst.id,
                 v_common || v_batch || jsonb_build_object('wallet', dst.id, 'balance', dst.balance + p_amount),
                 p_correlation_id, v_now, v_now, 1, NULL),
                (p_events[3], 'transaction.completed', 'transaction', p_transaction,
                 v_batch || jsonb_build_object('transaction', p_transaction, 'type', 'transfer',
                     'status', 'completed', 'amount', p_amount, 'currency', src.currency,
                     'source_wallet', src.id, 'destination_wallet', dst.id, 'failure_code', NULL),
                 p_correlation_id, v_now, v_now, 1, NULL);
            -- Last: the audit chain's lock is held from here to commit.
            PERFORM audit_append(
                p_actor_type, p_actor_id, p_actor_repr, 'wallet.transfer', 'transaction', p_transaction,
                jsonb_build_object('source_balance', src.balance, 'destination_balance', dst.balance),
                v_common || v_batch || jsonb_build_object(
                    'source_wallet', src.id, 'destination_wallet', dst.id,
                    'source_balance', src.balance - p_amount, 'destination_balance', dst.balance + p_amount,
                    'journal_entry', p_entry),
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
            currency := src.currency; created_at := v_now;
            source_user := src.user_id; destination_user := dst.user_id;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {SINGLE}(
            p_user varchar, p_source varchar, p_destination varchar, p_amount bigint,
            p_description varchar, p_transaction varchar, p_entry varchar, p_events varchar[],
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar,
            p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS TABLE (
            currency varchar, created_at timestamptz, source_user varchar, destination_user varchar
        ) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            result record;
        BEGIN
            -- Both rows locked in id order before anything is read: A->B and B->A queue, never deadlock.
            PERFORM 1 FROM {wallet} AS w WHERE w.id IN (p_source, p_destination) ORDER BY w.id FOR UPDATE;
            SELECT * INTO result FROM {APPLY}(p_user, p_source, p_destination, p_amount, p_description,
                p_transaction, p_entry, p_events, NULL, p_actor_type, p_actor_id, p_actor_repr,
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
            IF result.refusal IS NOT NULL THEN
                RAISE EXCEPTION USING ERRCODE = result.refusal, COLUMN = result.refused_param,
                    MESSAGE = result.refusal_message;
            END IF;
            RETURN QUERY SELECT result.currency, result.created_at, result.source_user, result.destination_user;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {BATCH}(
            p_user varchar, p_items jsonb, p_atomic boolean, p_batch varchar, p_batch_event varchar,
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar,
            p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS TABLE (
            refusal varchar, refused_param varchar, refusal_message varchar, currency varchar,
            created_at timestamptz, source_user varchar, destination_user varchar
        ) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            item jsonb;
            v_position integer;
            result record;
            v_done jsonb := '[]'::jsonb;
            v_failed integer := 0;
        BEGIN
            -- Every wallet of the batch, once, in id order: batches and transfers touching the same
            -- wallets in any order queue behind each other instead of deadlocking.
            PERFORM 1 FROM {wallet} AS w
                WHERE w.id IN (
                    SELECT x ->> 'source_wallet' FROM jsonb_array_elements(p_items) AS x
                    UNION SELECT x ->> 'destination_wallet' FROM jsonb_array_elements(p_items) AS x
                )
                ORDER BY w.id FOR UPDATE;
            FOR item, v_position IN SELECT x, n - 1 FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(x, n) LOOP
                SELECT * INTO result FROM {APPLY}(p_user, item ->> 'source_wallet', item ->> 'destination_wallet',
                    (item ->> 'amount')::bigint, item ->> 'description', item ->> 'transaction',
                    item ->> 'entry', ARRAY(SELECT jsonb_array_elements_text(item -> 'events'))::varchar[],
                    p_batch, p_actor_type, p_actor_id, p_actor_repr, p_correlation_id, p_ip, p_user_agent,
                    p_chains, p_lock_key);
                IF result.refusal IS NOT NULL THEN
                    IF p_atomic THEN
                        RAISE EXCEPTION USING ERRCODE = result.refusal,
                            COLUMN = 'transfers[' || v_position || '].' || result.refused_param,
                            MESSAGE = result.refusal_message;
                    END IF;
                    v_failed := v_failed + 1;
                    RETURN QUERY SELECT result.refusal, ('transfers[' || v_position || '].' || result.refused_param)::varchar,
                        result.refusal_message, NULL::varchar, NULL::timestamptz, NULL::varchar, NULL::varchar;
                ELSE
                    v_done := v_done || jsonb_build_array(jsonb_build_object(
                        'transaction', item ->> 'transaction', 'source_wallet', item ->> 'source_wallet',
                        'destination_wallet', item ->> 'destination_wallet', 'destination_user',
                        result.destination_user, 'amount', (item ->> 'amount')::bigint,
                        'currency', result.currency));
                    RETURN QUERY SELECT NULL::varchar, NULL::varchar, NULL::varchar, result.currency,
                        result.created_at, result.source_user, result.destination_user;
                END IF;
            END LOOP;
            IF jsonb_array_length(v_done) > 0 THEN
                INSERT INTO {outbox} (
                    id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                    published_at, publish_attempts, delivered_at
                ) VALUES (
                    p_batch_event, 'transfer_batch.completed', 'transfer_batch', p_batch,
                    jsonb_build_object('batch', p_batch, 'user', p_user, 'transfers', v_done, 'failed', v_failed),
                    p_correlation_id, clock_timestamp(), clock_timestamp(), 1, NULL
                );
            END IF;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {BATCH}({BATCH_ARGS})")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {SINGLE}({SINGLE_ARGS})")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {APPLY}({APPLY_ARGS})")
    # Back to the previous version of the single transfer.
    import_module("apps.wallets.migrations.0005_transfer_function").install(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("wallets", "0005_transfer_function")]

    operations = [migrations.RunPython(install, remove)]
