"""Holding a wallet payment's funds as one PostgreSQL function: one round trip for its money.

`payment_wallet_hold_v1(...)` holds the amount of a new wallet payment that is not captured at once
(a manual capture, or held for review): it locks the wallet, then the payment (the order of the
creating service, which already holds the wallet), refuses a frozen wallet (`PW002`, param
`payment_method`) or one holding less than the amount (`PW004`, param `amount`) before writing
anything, finds or creates the currency's `wallet_holds` system account
(`ledger_system_account_v1`), writes the journal entry (wallet -> holds), takes the amount off the
wallet's balance with its `wallet.funds_deducted` event, exactly as `wallet_post_locked` wrote
them, and, unless `p_review` (the caller then opens the review), moves the payment to
`requires_capture` with its `payment.authorize` audit row, as `payment_move` wrote it.
`apps.payments.services.booking.hold_wallet_payment` is its only caller: it has checked the
transition (`apps.payments.states`); `apps.wallets.engine` maps the refusals.
"""

from django.db import migrations

FUNCTION = "payment_wallet_hold_v1"
ARGS = (
    "varchar, boolean, varchar, varchar, varchar, "
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
            p_payment varchar, p_review boolean, p_entry varchar, p_holds varchar, p_event varchar,
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
            SELECT * INTO w FROM {wallet} AS x
                WHERE x.id = (SELECT y.wallet_id FROM {payment} AS y WHERE y.id = p_payment) FOR UPDATE;
            SELECT * INTO p FROM {payment} AS y WHERE y.id = p_payment FOR UPDATE;
            IF p.id IS NULL OR w.id IS NULL OR p.method_type <> 'wallet' OR p.status <> 'pending'
                    OR p.amount_captured <> 0 THEN
                RAISE EXCEPTION '{FUNCTION}: % cannot hold its wallet''s funds', p_payment;
            END IF;
            v_holds := ledger_system_account_v1('wallet_holds', p.currency, p_holds);
            IF w.status <> 'active' THEN
                RAISE EXCEPTION USING ERRCODE = 'PW002', COLUMN = 'payment_method',
                    MESSAGE = 'Wallet ' || w.id || ' is frozen.';
            END IF;
            IF w.balance < p.amount THEN
                RAISE EXCEPTION USING ERRCODE = 'PW004', COLUMN = 'amount',
                    MESSAGE = 'The source wallet''s balance is lower than the amount.';
            END IF;

            v_now := clock_timestamp();
            INSERT INTO {entry} (id, kind, memo, correlation_id, created_at)
                VALUES (p_entry, 'payment_hold', left('hold for ' || p.id, 500), p_correlation_id, v_now);
            INSERT INTO {posting} (entry_id, account_id, amount, currency) VALUES
                (p_entry, w.ledger_account_id, -p.amount, w.currency),
                (p_entry, v_holds, p.amount, w.currency);
            UPDATE {wallet} AS x SET balance = x.balance - p.amount WHERE x.id = w.id;
            -- The event as apps.core.outbox.emit_event writes it (counted as handed over; the caller
            -- hands it to the broker after commit), its payload as wallet_post_locked builds it.
            INSERT INTO {outbox} (
                id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                published_at, publish_attempts, delivered_at
            ) VALUES (
                p_event, 'wallet.funds_deducted', 'wallet', w.id,
                jsonb_build_object('wallet', w.id, 'amount', p.amount, 'currency', w.currency,
                    'balance', w.balance - p.amount, 'journal_entry', p_entry, 'reason', 'payment_hold'),
                p_correlation_id, v_now, v_now, 1, NULL
            );
            IF NOT p_review THEN
                UPDATE {payment} AS y SET status = 'requires_capture', pending_operation = '',
                    next_attempt_at = NULL, updated_at = v_now
                    WHERE y.id = p.id;
                v_view := jsonb_build_object('amount', p.amount, 'amount_captured', p.amount_captured,
                    'amount_refunded', p.amount_refunded, 'currency', p.currency, 'failure_code', p.failure_code);
                -- Last: the audit chain's lock is held from here to commit.
                PERFORM audit_append(
                    p_actor_type, p_actor_id, p_actor_repr, 'payment.authorize', 'payment', p.id,
                    v_view || jsonb_build_object('status', p.status, 'pending_operation', p.pending_operation),
                    v_view || jsonb_build_object('status', 'requires_capture', 'pending_operation', ''),
                    p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
            END IF;
            RETURN QUERY SELECT v_now, w.balance - p.amount;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}({ARGS})")


class Migration(migrations.Migration):
    dependencies = [("payments", "0010_wallet_hold_capture_function")]

    operations = [migrations.RunPython(install, remove)]
