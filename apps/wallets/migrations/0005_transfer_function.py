"""A transfer as one PostgreSQL function: one round trip for the whole money movement.

`wallet_transfer_v1(...)` locks both wallets in id order, checks them, writes the journal entry and
its two postings, moves both balances, writes the transaction row, its three outbox events and its
audit row (through `audit_append`, which hashes it as `verify_audit_chain` recomputes it), and
returns what the API answers. `apps.wallets.services.wallet_transfer` is its only caller: it makes
the ids, passes who acts, and maps the refusals, raised as SQLSTATE class `PW`
(`apps.wallets.engine`), to the API's errors. A later change to the function is a new version
(`_v2`) in a new migration, so code and schema move together.
"""

from django.db import migrations

FUNCTION = "wallet_transfer_v1"
ARGS = (
    "varchar, varchar, varchar, bigint, varchar, varchar, varchar, varchar[], "
    "varchar, varchar, varchar, varchar, varchar, varchar, integer, bigint"
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(app: str, model: str) -> str:
        return schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)

    wallet, txn = table("wallets", "Wallet"), table("wallets", "Transaction")
    entry, posting = table("ledger", "JournalEntry"), table("ledger", "Posting")
    outbox = table("core", "OutboxEvent")
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}(
            p_user varchar, p_source varchar, p_destination varchar, p_amount bigint,
            p_description varchar, p_transaction varchar, p_entry varchar, p_events varchar[],
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar,
            p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS TABLE (
            currency varchar, created_at timestamptz, source_user varchar, destination_user varchar,
            source_balance bigint, destination_balance bigint
        ) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            locked {wallet}%ROWTYPE;
            src {wallet}%ROWTYPE;
            dst {wallet}%ROWTYPE;
            v_now timestamptz;
            v_common jsonb;
        BEGIN
            -- Both rows locked in id order before anything is read: A->B and B->A queue, never deadlock.
            FOR locked IN
                SELECT * FROM {wallet} AS w WHERE w.id IN (p_source, p_destination) ORDER BY w.id FOR UPDATE
            LOOP
                IF locked.id = p_source THEN src := locked; ELSE dst := locked; END IF;
            END LOOP;
            IF src.id IS NULL OR src.user_id <> p_user THEN
                RAISE EXCEPTION USING ERRCODE = 'PW001', COLUMN = 'source_wallet',
                    MESSAGE = 'No such wallet: ''' || p_source || '''';
            END IF;
            IF dst.id IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'PW001', COLUMN = 'destination_wallet',
                    MESSAGE = 'No such wallet: ''' || p_destination || '''';
            END IF;
            IF src.status <> 'active' THEN
                RAISE EXCEPTION USING ERRCODE = 'PW002', COLUMN = 'source_wallet',
                    MESSAGE = 'Wallet ' || src.id || ' is frozen.';
            END IF;
            IF dst.status <> 'active' THEN
                RAISE EXCEPTION USING ERRCODE = 'PW002', COLUMN = 'destination_wallet',
                    MESSAGE = 'Wallet ' || dst.id || ' is frozen.';
            END IF;
            IF src.currency <> dst.currency THEN
                RAISE EXCEPTION USING ERRCODE = 'PW003', COLUMN = 'destination_wallet',
                    MESSAGE = 'The source wallet holds ' || src.currency || ' but the destination holds '
                        || dst.currency || '.';
            END IF;
            IF src.balance < p_amount THEN
                RAISE EXCEPTION USING ERRCODE = 'PW004', COLUMN = 'amount', MESSAGE = 'insufficient funds';
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
            -- caller hands them to the broker after commit), payloads as the ORM path built them.
            v_common := jsonb_build_object('transaction', p_transaction, 'amount', p_amount, 'currency', src.currency);
            INSERT INTO {outbox} (
                id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                published_at, publish_attempts, delivered_at
            ) VALUES
                (p_events[1], 'wallet.funds_deducted', 'wallet', src.id,
                 v_common || jsonb_build_object('wallet', src.id, 'balance', src.balance - p_amount),
                 p_correlation_id, v_now, v_now, 1, NULL),
                (p_events[2], 'wallet.funds_added', 'wallet', dst.id,
                 v_common || jsonb_build_object('wallet', dst.id, 'balance', dst.balance + p_amount),
                 p_correlation_id, v_now, v_now, 1, NULL),
                (p_events[3], 'transaction.completed', 'transaction', p_transaction,
                 jsonb_build_object('transaction', p_transaction, 'type', 'transfer', 'status', 'completed',
                     'amount', p_amount, 'currency', src.currency, 'source_wallet', src.id,
                     'destination_wallet', dst.id, 'failure_code', NULL),
                 p_correlation_id, v_now, v_now, 1, NULL);
            -- Last: the audit chain's lock is held from here to commit.
            PERFORM audit_append(
                p_actor_type, p_actor_id, p_actor_repr, 'wallet.transfer', 'transaction', p_transaction,
                jsonb_build_object('source_balance', src.balance, 'destination_balance', dst.balance),
                v_common || jsonb_build_object(
                    'source_wallet', src.id, 'destination_wallet', dst.id,
                    'source_balance', src.balance - p_amount, 'destination_balance', dst.balance + p_amount,
                    'journal_entry', p_entry),
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
            RETURN QUERY SELECT src.currency, v_now, src.user_id, dst.user_id,
                src.balance - p_amount, dst.balance + p_amount;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}({ARGS})")


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0004_deposit_review"),
        ("audit", "0004_audit_append_in_sql"),
        ("ledger", "0002_integrity_triggers"),
        ("core", "0003_dead_letter"),
    ]

    operations = [migrations.RunPython(install, remove)]
