"""Releasing a wallet payment's hold as one PostgreSQL function: one round trip for its money.

`payment_wallet_hold_release_v1(...)` gives a wallet payment's held amount back (a cancel, or a
reviewer's denial): it locks the payment, then its wallet (the order of the callers, which already
hold the payment), refuses a frozen wallet (`PW002`, param `payment_method`) before writing
anything, finds or creates the currency's `wallet_holds` system account
(`ledger_system_account_v1`), writes the journal entry (holds -> wallet), adds the amount back to
the wallet's balance with its `wallet.funds_added` event, moves the payment to `canceled` (with the
caller's `metadata`, which a cancel's reason joins) and writes its `payment.canceled` event and its
`payment.cancel` audit row, exactly as `wallet_post_locked` followed by `payment_move` wrote them.
`apps.payments.services.booking.release_wallet_hold` is its only caller: it has checked the
transition (`apps.payments.states`); `apps.wallets.engine` maps the refusal.
"""

from django.db import migrations

FUNCTION = "payment_wallet_hold_release_v1"
ARGS = (
    "varchar, jsonb, varchar, varchar, varchar[], "
    "varchar, varchar, varchar, varchar, varchar, varchar, integer, bigint"
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(app: str, model: str) -> str:
        return schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)

    payment, wallet = table("payments", "Payment"), table("wallets", "Wallet")
    entry, posting = table("ledger", "JournalEntry"), table("ledger", "Posting")
    outbox = table("core", "OutboxEvent")
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}(
            p_payment varchar, p_metadata jsonb, p_entry varchar, p_holds varchar, p_events varchar[],
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar,
            p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS TABLE (updated_at timestamptz, balance bigint)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            p {payment}%ROWTYPE;
            w {wallet}%ROWTYPE;
            v_holds varchar;
            v_now timestamptz;
            v_view jsonb;
        BEGIN
            SELECT * INTO p FROM {payment} AS y WHERE y.id = p_payment FOR UPDATE;
            SELECT * INTO w FROM {wallet} AS x WHERE x.id = p.wallet_id FOR UPDATE;
            IF p.id IS NULL OR w.id IS NULL OR p.method_type <> 'wallet'
                    OR p.status NOT IN ('requires_capture', 'in_review') OR p.amount_captured <> 0 THEN
                RAISE EXCEPTION '{FUNCTION}: % holds nothing to release', p_payment;
            END IF;
            v_holds := ledger_system_account_v1('wallet_holds', p.currency, p_holds);
            IF w.status <> 'active' THEN
                RAISE EXCEPTION USING ERRCODE = 'PW002', COLUMN = 'payment_method',
                    MESSAGE = 'Wallet ' || w.id || ' is frozen.';
            END IF;

            v_now := clock_timestamp();
            INSERT INTO {entry} (id, kind, memo, correlation_id, created_at)
                VALUES (p_entry, 'payment_release', left('release ' || p.id, 500), p_correlation_id, v_now);
            INSERT INTO {posting} (entry_id, account_id, amount, currency) VALUES
                (p_entry, v_holds, -p.amount, w.currency),
                (p_entry, w.ledger_account_id, p.amount, w.currency);
            UPDATE {wallet} AS x SET balance = x.balance + p.amount WHERE x.id = w.id;
            UPDATE {payment} AS y SET status = 'canceled', pending_operation = '', next_attempt_at = NULL,
                metadata = coalesce(p_metadata, y.metadata), updated_at = v_now
                WHERE y.id = p.id;
            -- The events as apps.core.outbox.emit_event writes them (counted as handed over; the
            -- caller hands them to the broker after commit), payloads as wallet_post_locked and
            -- payment_payload build them.
            INSERT INTO {outbox} (
                id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                published_at, publish_attempts, delivered_at
            ) VALUES
                (p_events[1], 'wallet.funds_added', 'wallet', w.id,
                 jsonb_build_object('wallet', w.id, 'amount', p.amount, 'currency', w.currency,
                     'balance', w.balance + p.amount, 'journal_entry', p_entry, 'reason', 'payment_release'),
                 p_correlation_id, v_now, v_now, 1, NULL),
                (p_events[2], 'payment.canceled', 'payment', p.id,
                 jsonb_build_object('payment', p.id, 'owner', p.owner_id, 'customer_id', p.customer_id,
                     'status', 'canceled', 'amount', p.amount, 'amount_captured', p.amount_captured,
                     'amount_refunded', p.amount_refunded, 'currency', p.currency,
                     'failure_code', p.failure_code, 'subscription', nullif(p.subscription_id, '')),
                 p_correlation_id, v_now, v_now, 1, NULL);
            v_view := jsonb_build_object('amount', p.amount, 'amount_captured', p.amount_captured,
                'amount_refunded', p.amount_refunded, 'currency', p.currency, 'failure_code', p.failure_code);
            -- Last: the audit chain's lock is held from here to commit.
            PERFORM audit_append(
                p_actor_type, p_actor_id, p_actor_repr, 'payment.cancel', 'payment', p.id,
                v_view || jsonb_build_object('status', p.status, 'pending_operation', p.pending_operation),
                v_view || jsonb_build_object('status', 'canceled', 'pending_operation', ''),
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
            RETURN QUERY SELECT v_now, w.balance + p.amount;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}({ARGS})")


class Migration(migrations.Migration):
    dependencies = [("payments", "0011_wallet_hold_function")]

    operations = [migrations.RunPython(install, remove)]
