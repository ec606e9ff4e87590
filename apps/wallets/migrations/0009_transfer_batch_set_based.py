"""A batch of transfers written set-based: one statement per kind of row, not a dozen per item.

- `wallet_transfer_refusal(user, source, destination, amount, src, dst)`: a transfer's rules, the
  one place they live: given the two wallets' rows as they stand (NULL: no such wallet), it
  returns the refusal (SQLSTATE, parameter, message) or NULLs. `wallet_transfer_apply` (the single
  transfer, `wallet_transfer_v2`) and `wallet_transfer_batch_v2` both ask it, item by item.
- `wallet_transfer_apply(...)`: as migration 0006 wrote it, its checks now that call.
- `wallet_transfer_batch_v2(...)` replaces `wallet_transfer_batch_v1`, same arguments, results,
  rows and refusals. It locks every wallet of the batch once, in id order, and reads them in the
  same statement; checks the items in input order against the balances the earlier items left,
  in memory (arrays: no statement per item but the check); an `atomic` batch raises the first
  refusal (`transfers[i].param`) before writing anything, otherwise a refused item moves nothing
  and is returned in place. Then one INSERT each writes the completed items' journal entries,
  postings, transaction rows and outbox events (the items' three each, in item order, then
  `transfer_batch.completed`), one UPDATE the balances (each wallet's net change), and one call of
  `audit_append_rows` (migration audit 0005) their audit rows, one per transfer, chained in item
  order under one chain lock. Timestamps are taken per item as v1 did (`clock_timestamp()`).
  The ledger's deferred balance trigger still runs at commit once per posting.

Measured with bench/engine_batch.py (the function alone, 100 random transfers per batch from a
wallet to others of 200, atomic, each batch its own transaction, 200-300 batches each in
alternating rounds, on the shared 2-core machine under load 3-4), with

    python bench/engine_batch.py --previous --compare wallet_transfer_batch_v1,wallet_transfer_batch_v2

v1 59-68 ms, v2 39-40 ms per batch of 100 (median of call + commit; ratio 0.60-0.66): the call
went from 52-59 ms to 31-33 ms, the commit stayed at 7-9 ms (the ledger's deferred balance
trigger and the deferred foreign keys, once per posting or row). What is left of the call
(bench/engine_batch.py --profile): the audit rows' hashes, about a third (each row's canonical
JSON, `audit_canonical_json` in plpgsql, about 0.1 ms), the 301 outbox rows (five indexes, a row
trigger) about a quarter, the other INSERTs and the item loop the rest.

The reverse of this migration restores 0006's functions (`wallet_transfer_apply` with its checks
inline and `wallet_transfer_batch_v1`).
"""

from importlib import import_module

from django.db import migrations

PREVIOUS = import_module("apps.wallets.migrations.0006_transfer_batch_function")
REFUSAL = "wallet_transfer_refusal"
BATCH = "wallet_transfer_batch_v2"


def _tables(apps, schema_editor) -> dict[str, str]:
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")
    return {
        name: schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)
        for name, app, model in (
            ("wallet", "wallets", "Wallet"),
            ("txn", "wallets", "Transaction"),
            ("entry", "ledger", "JournalEntry"),
            ("posting", "ledger", "Posting"),
            ("outbox", "core", "OutboxEvent"),
        )
    }


def install(apps, schema_editor):
    t = _tables(apps, schema_editor)
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {REFUSAL}(
            p_user varchar, p_source varchar, p_destination varchar, p_amount bigint,
            src {t["wallet"]}, dst {t["wallet"]},
            OUT refusal varchar, OUT refused_param varchar, OUT refusal_message varchar
        ) LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
            IF p_source = p_destination THEN
                refusal := 'PW005'; refused_param := 'destination_wallet';
                refusal_message := 'The source and destination wallets must differ.';
            ELSIF src.id IS NULL OR src.user_id <> p_user THEN
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
        END;
        $$
        """,
        params=None,
    )
    schema_editor.execute(_apply_sql(t), params=None)
    schema_editor.execute(_batch_sql(t), params=None)
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {PREVIOUS.BATCH}({PREVIOUS.BATCH_ARGS})")


def _apply_sql(t: dict[str, str]) -> str:
    """0006's wallet_transfer_apply, its checks those of wallet_transfer_refusal."""
    return f"""
        CREATE OR REPLACE FUNCTION {PREVIOUS.APPLY}(
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
            src {t["wallet"]}%ROWTYPE;
            dst {t["wallet"]}%ROWTYPE;
            v_now timestamptz;
            v_common jsonb;
            v_batch jsonb := CASE WHEN p_batch IS NULL THEN '{{}}'::jsonb
                ELSE jsonb_build_object('batch', p_batch) END;
        BEGIN
            -- The caller holds both rows' locks; read them now (a batch's earlier items moved them).
            SELECT * INTO src FROM {t["wallet"]} AS w WHERE w.id = p_source;
            SELECT * INTO dst FROM {t["wallet"]} AS w WHERE w.id = p_destination;
            SELECT c.refusal, c.refused_param, c.refusal_message INTO refusal, refused_param, refusal_message
                FROM {REFUSAL}(p_user, p_source, p_destination, p_amount, src, dst) AS c;
            IF refusal IS NOT NULL THEN
                RETURN;
            END IF;

            v_now := clock_timestamp();
            INSERT INTO {t["entry"]} (id, kind, memo, correlation_id, created_at)
                VALUES (p_entry, 'transfer', left('transfer ' || src.id || ' -> ' || dst.id, 500),
                        p_correlation_id, v_now);
            INSERT INTO {t["posting"]} (entry_id, account_id, amount, currency) VALUES
                (p_entry, src.ledger_account_id, -p_amount, src.currency),
                (p_entry, dst.ledger_account_id, p_amount, src.currency);
            UPDATE {t["wallet"]} AS w SET balance = w.balance + CASE WHEN w.id = src.id THEN -p_amount ELSE p_amount END
                WHERE w.id IN (src.id, dst.id);
            INSERT INTO {t["txn"]} (
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
            INSERT INTO {t["outbox"]} (
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
        """  # noqa: S608 - the table names are the models' own, quoted


def _batch_sql(t: dict[str, str]) -> str:
    # The completed items, as rows in input order: what every INSERT below selects from.
    done = """unnest(v_ok, v_sources, v_destinations, v_amounts, v_descriptions, v_transactions, v_entries,
                v_events1, v_events2, v_events3, v_at, v_currencies, v_source_accounts, v_destination_accounts,
                v_source_before, v_destination_before, v_destination_users) WITH ORDINALITY
            AS d(ok, src, dst, amount, description, txn, entry, event1, event2, event3, at, currency,
                src_account, dst_account, src_before, dst_before, dst_user, n)"""
    common = "jsonb_build_object('transaction', d.txn, 'amount', d.amount, 'currency', d.currency) || v_batch"
    return f"""
        CREATE OR REPLACE FUNCTION {BATCH}(
            p_user varchar, p_items jsonb, p_atomic boolean, p_batch varchar, p_batch_event varchar,
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar,
            p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS TABLE (
            refusal varchar, refused_param varchar, refusal_message varchar, currency varchar,
            created_at timestamptz, source_user varchar, destination_user varchar
        ) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            v_batch jsonb := CASE WHEN p_batch IS NULL THEN '{{}}'::jsonb
                ELSE jsonb_build_object('batch', p_batch) END;
            -- The items: element i of each array is the input's item i.
            v_sources varchar[]; v_destinations varchar[]; v_amounts bigint[]; v_descriptions varchar[];
            v_transactions varchar[]; v_entries varchar[];
            v_events1 varchar[]; v_events2 varchar[]; v_events3 varchar[];
            v_count integer;
            -- The batch's wallets in id order, and their balances as the items move them.
            v_ids varchar[]; v_wallets {t["wallet"]}[]; v_balances bigint[]; v_start bigint[];
            -- What item i did when it completed (v_ok), to be written after the loop.
            v_ok boolean[] := '{{}}'; v_at timestamptz[] := '{{}}'; v_currencies varchar[] := '{{}}';
            v_source_accounts varchar[] := '{{}}'; v_destination_accounts varchar[] := '{{}}';
            v_source_before bigint[] := '{{}}'; v_destination_before bigint[] := '{{}}';
            v_destination_users varchar[] := '{{}}';
            v_failed integer := 0;
            v_s integer; v_d integer;
            v_src {t["wallet"]}%ROWTYPE; v_dst {t["wallet"]}%ROWTYPE;
            v_refusal varchar; v_param varchar; v_message varchar;
            v_done jsonb;
            v_txns varchar[]; v_befores jsonb[]; v_afters jsonb[];
        BEGIN
            SELECT array_agg(x ->> 'source_wallet' ORDER BY n), array_agg(x ->> 'destination_wallet' ORDER BY n),
                array_agg((x ->> 'amount')::bigint ORDER BY n), array_agg(x ->> 'description' ORDER BY n),
                array_agg(x ->> 'transaction' ORDER BY n), array_agg(x ->> 'entry' ORDER BY n),
                array_agg(x -> 'events' ->> 0 ORDER BY n), array_agg(x -> 'events' ->> 1 ORDER BY n),
                array_agg(x -> 'events' ->> 2 ORDER BY n)
                INTO v_sources, v_destinations, v_amounts, v_descriptions, v_transactions, v_entries,
                    v_events1, v_events2, v_events3
                FROM jsonb_array_elements(p_items) WITH ORDINALITY AS item(x, n);
            v_count := coalesce(cardinality(v_sources), 0);
            -- Every wallet of the batch, once, in id order, read as locked: batches and transfers
            -- touching the same wallets in any order queue behind each other instead of deadlocking.
            SELECT array_agg((l.w).id ORDER BY (l.w).id), array_agg(l.w ORDER BY (l.w).id),
                array_agg((l.w).balance ORDER BY (l.w).id)
                INTO v_ids, v_wallets, v_balances
                FROM (
                    SELECT w FROM {t["wallet"]} AS w
                    WHERE w.id IN (SELECT unnest(v_sources) UNION SELECT unnest(v_destinations))
                    ORDER BY w.id FOR UPDATE
                ) AS l;
            v_start := v_balances;

            FOR i IN 1 .. v_count LOOP
                v_s := array_position(v_ids, v_sources[i]);
                v_d := array_position(v_ids, v_destinations[i]);
                v_src := v_wallets[v_s]; v_src.balance := v_balances[v_s];
                v_dst := v_wallets[v_d]; v_dst.balance := v_balances[v_d];
                SELECT c.refusal, c.refused_param, c.refusal_message INTO v_refusal, v_param, v_message
                    FROM {REFUSAL}(p_user, v_sources[i], v_destinations[i], v_amounts[i], v_src, v_dst) AS c;
                IF v_refusal IS NOT NULL THEN
                    IF p_atomic THEN
                        RAISE EXCEPTION USING ERRCODE = v_refusal,
                            COLUMN = 'transfers[' || (i - 1) || '].' || v_param, MESSAGE = v_message;
                    END IF;
                    v_failed := v_failed + 1;
                    v_ok[i] := false; v_at[i] := NULL; v_currencies[i] := NULL;
                    v_source_accounts[i] := NULL; v_destination_accounts[i] := NULL;
                    v_source_before[i] := NULL; v_destination_before[i] := NULL; v_destination_users[i] := NULL;
                    refusal := v_refusal; refused_param := 'transfers[' || (i - 1) || '].' || v_param;
                    refusal_message := v_message;
                    currency := NULL; created_at := NULL; source_user := NULL; destination_user := NULL;
                ELSE
                    v_ok[i] := true; v_at[i] := clock_timestamp(); v_currencies[i] := v_src.currency;
                    v_source_accounts[i] := v_src.ledger_account_id; v_destination_accounts[i] := v_dst.ledger_account_id;
                    v_source_before[i] := v_src.balance; v_destination_before[i] := v_dst.balance;
                    v_destination_users[i] := v_dst.user_id;
                    v_balances[v_s] := v_src.balance - v_amounts[i];
                    v_balances[v_d] := v_dst.balance + v_amounts[i];
                    refusal := NULL; refused_param := NULL; refusal_message := NULL;
                    currency := v_src.currency; created_at := v_at[i];
                    source_user := v_src.user_id; destination_user := v_dst.user_id;
                END IF;
                RETURN NEXT;
            END LOOP;
            IF v_failed = v_count THEN
                RETURN;
            END IF;

            INSERT INTO {t["entry"]} (id, kind, memo, correlation_id, created_at)
                SELECT d.entry, 'transfer', left('transfer ' || d.src || ' -> ' || d.dst, 500), p_correlation_id, d.at
                FROM {done} WHERE d.ok ORDER BY d.n;
            INSERT INTO {t["posting"]} (entry_id, account_id, amount, currency)
                SELECT d.entry, line.account, line.amount, d.currency
                FROM {done}
                CROSS JOIN LATERAL (VALUES (1, d.src_account, -d.amount), (2, d.dst_account, d.amount))
                    AS line(side, account, amount)
                WHERE d.ok ORDER BY d.n, line.side;
            UPDATE {t["wallet"]} AS w SET balance = w.balance + b.change
                FROM (SELECT b.id, b.now_ - b.start_ AS change FROM unnest(v_ids, v_balances, v_start) AS b(id, now_, start_)) AS b
                WHERE w.id = b.id AND b.change <> 0;
            INSERT INTO {t["txn"]} (
                id, type, status, amount, currency, description, failure_code, failure_message,
                gateway_reference, created_at, updated_at, journal_entry_id, destination_wallet_id,
                source_wallet_id, attempts, gateway, next_attempt_at, payment_method_token, reconcile_reason,
                pending_operation, risk_reasons
            )
                SELECT d.txn, 'transfer', 'completed', d.amount, d.currency, d.description, NULL, NULL,
                    '', d.at, d.at, d.entry, d.dst, d.src, 0, '', NULL, '', '', '', '[]'::jsonb
                FROM {done} WHERE d.ok ORDER BY d.n;
            SELECT jsonb_agg(jsonb_build_object('transaction', d.txn, 'source_wallet', d.src,
                    'destination_wallet', d.dst, 'destination_user', d.dst_user, 'amount', d.amount,
                    'currency', d.currency) ORDER BY d.n),
                array_agg(d.txn ORDER BY d.n),
                array_agg(jsonb_build_object('source_balance', d.src_before, 'destination_balance', d.dst_before)
                    ORDER BY d.n),
                array_agg({common} || jsonb_build_object('source_wallet', d.src, 'destination_wallet', d.dst,
                    'source_balance', d.src_before - d.amount, 'destination_balance', d.dst_before + d.amount,
                    'journal_entry', d.entry) ORDER BY d.n)
                INTO v_done, v_txns, v_befores, v_afters
                FROM {done} WHERE d.ok;
            -- The items' events in item order, then the batch's: the order the relay hands them over.
            INSERT INTO {t["outbox"]} (
                id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                published_at, publish_attempts, delivered_at
            )
                SELECT e.id, e.event_type, e.aggregate_type, e.aggregate_id, e.payload, p_correlation_id, e.at,
                    NULL, 0, NULL
                FROM (
                    SELECT d.n, ev.k, ev.id, ev.event_type, ev.aggregate_type, ev.aggregate_id, ev.payload, d.at
                    FROM {done}
                    CROSS JOIN LATERAL (VALUES
                        (1, d.event1, 'wallet.funds_deducted', 'wallet', d.src,
                         {common} || jsonb_build_object('wallet', d.src, 'balance', d.src_before - d.amount)),
                        (2, d.event2, 'wallet.funds_added', 'wallet', d.dst,
                         {common} || jsonb_build_object('wallet', d.dst, 'balance', d.dst_before + d.amount)),
                        (3, d.event3, 'transaction.completed', 'transaction', d.txn,
                         v_batch || jsonb_build_object('transaction', d.txn, 'type', 'transfer',
                             'status', 'completed', 'amount', d.amount, 'currency', d.currency,
                             'source_wallet', d.src, 'destination_wallet', d.dst, 'failure_code', NULL))
                    ) AS ev(k, id, event_type, aggregate_type, aggregate_id, payload)
                    WHERE d.ok
                    UNION ALL
                    SELECT v_count + 1, 1, p_batch_event, 'transfer_batch.completed', 'transfer_batch', p_batch,
                        jsonb_build_object('batch', p_batch, 'user', p_user, 'transfers', v_done, 'failed', v_failed),
                        clock_timestamp()
                ) AS e
                ORDER BY e.n, e.k;
            -- Last: the audit chain's lock is held from here to commit.
            PERFORM audit_append_rows(
                p_actor_type, p_actor_id, p_actor_repr,
                array_fill('wallet.transfer'::varchar, ARRAY[cardinality(v_txns)]),
                array_fill('transaction'::varchar, ARRAY[cardinality(v_txns)]), v_txns, v_befores, v_afters,
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
        END;
        $$
        """  # noqa: S608 - the table names are the models' own, quoted


def remove(apps, schema_editor):
    t = _tables(apps, schema_editor)
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {BATCH}({PREVIOUS.BATCH_ARGS})")
    PREVIOUS.install(apps, schema_editor)  # wallet_transfer_apply and wallet_transfer_batch_v1 of 0006
    schema_editor.execute(
        f"DROP FUNCTION IF EXISTS {REFUSAL}(varchar, varchar, varchar, bigint, {t['wallet']}, {t['wallet']})"
    )


class Migration(migrations.Migration):
    dependencies = [("wallets", "0008_wallet_post_function"), ("audit", "0005_audit_append_rows")]

    operations = [migrations.RunPython(install, remove)]
