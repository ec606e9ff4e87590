"""Capturing a wallet payment's hold as one PostgreSQL function: one round trip for its money.

`payment_wallet_hold_capture_v1(...)` captures `amount` of the funds a wallet payment holds (a
manual capture, or a reviewer's approval): it locks the payment, then its wallet (the order of the
callers, which already hold the payment), refuses a frozen wallet (`PW002`, param
`payment_method`) before writing anything, finds or creates the currency's `wallet_holds` and
`platform_revenue` system accounts (`ledger_system_account_v1`), writes the journal entry (the
holds give `amount` to revenue and the rest back to the wallet), adds the rest to the wallet's
balance with its `wallet.funds_added` event (none when everything is captured), moves the payment
to `succeeded` with the amount captured, and writes its `payment.succeeded` event and its
`payment.capture` audit row, exactly as `wallet_post_locked` followed by `payment_move` wrote them
(the audit row's `before` shows the captured amount already, as that path recorded it).
`apps.payments.services.booking.capture_wallet_hold` is its only caller: it has checked the
transition (`apps.payments.states`) and the amount; `apps.wallets.engine` maps the refusal.
"""

from django.db import migrations

FUNCTION = "payment_wallet_hold_capture_v1"
ARGS = (
    "varchar, bigint, varchar, varchar, varchar, varchar[], "
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
            p_payment varchar, p_amount bigint, p_entry varchar, p_holds varchar, p_revenue varchar,
            p_events varchar[],
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar,
            p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS TABLE (updated_at timestamptz, balance bigint)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            p {payment}%ROWTYPE;
            w {wallet}%ROWTYPE;
            v_holds varchar;
            v_revenue varchar;
            v_rest bigint;
            v_now timestamptz;
            v_view jsonb;
        BEGIN
            SELECT * INTO p FROM {payment} AS y WHERE y.id = p_payment FOR UPDATE;
            SELECT * INTO w FROM {wallet} AS x WHERE x.id = p.wallet_id FOR UPDATE;
            IF p.id IS NULL OR w.id IS NULL OR p.method_type <> 'wallet'
                    OR p.status NOT IN ('requires_capture', 'in_review')
                    OR p_amount <= 0 OR p_amount > p.amount THEN
                RAISE EXCEPTION '{FUNCTION}: % cannot capture %', p_payment, p_amount;
            END IF;
            v_holds := ledger_system_account_v1('wallet_holds', p.currency, p_holds);
            v_revenue := ledger_system_account_v1('platform_revenue', p.currency, p_revenue);
            IF w.status <> 'active' THEN
                RAISE EXCEPTION USING ERRCODE = 'PW002', COLUMN = 'payment_method',
                    MESSAGE = 'Wallet ' || w.id || ' is frozen.';
            END IF;

            v_now := clock_timestamp();
            v_rest := p.amount - p_amount;
            INSERT INTO {entry} (id, kind, memo, correlation_id, created_at)
                VALUES (p_entry, 'payment_capture', left('payment ' || p.id, 500), p_correlation_id, v_now);
            INSERT INTO {posting} (entry_id, account_id, amount, currency)
                SELECT p_entry, line.account, line.amount, p.currency
                FROM (VALUES (1, v_holds, -p.amount), (2, v_revenue, p_amount), (3, w.ledger_account_id, v_rest))
                    AS line(position, account, amount)
                WHERE line.amount <> 0
                ORDER BY line.position;
            UPDATE {wallet} AS x SET balance = x.balance + v_rest WHERE x.id = w.id;
            UPDATE {payment} AS y SET status = 'succeeded', amount_captured = p_amount,
                pending_operation = '', next_attempt_at = NULL, updated_at = v_now
                WHERE y.id = p.id;
            -- The events as apps.core.outbox.emit_event writes them (counted as handed over; the
            -- caller hands them to the broker after commit), payloads as wallet_post_locked and
            -- payment_payload build them: the wallet's only when some of the hold comes back.
            IF v_rest > 0 THEN
                INSERT INTO {outbox} (
                    id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                    published_at, publish_attempts, delivered_at
                ) VALUES (
                    p_events[1], 'wallet.funds_added', 'wallet', w.id,
                    jsonb_build_object('wallet', w.id, 'amount', v_rest, 'currency', w.currency,
                        'balance', w.balance + v_rest, 'journal_entry', p_entry, 'reason', 'payment_capture'),
                    p_correlation_id, v_now, v_now, 1, NULL
                );
            END IF;
            INSERT INTO {outbox} (
                id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                published_at, publish_attempts, delivered_at
            ) VALUES (
                p_events[2], 'payment.succeeded', 'payment', p.id,
                jsonb_build_object('payment', p.id, 'owner', p.owner_id, 'customer_id', p.customer_id,
                    'status', 'succeeded', 'amount', p.amount, 'amount_captured', p_amount,
                    'amount_refunded', p.amount_refunded, 'currency', p.currency,
                    'failure_code', p.failure_code, 'subscription', nullif(p.subscription_id, '')),
                p_correlation_id, v_now, v_now, 1, NULL
            );
            -- apps.payments.services.payloads.audit_view once the captured amount is known (as the
            -- Python path recorded it in `before` too).
            v_view := jsonb_build_object('amount', p.amount, 'amount_captured', p_amount,
                'amount_refunded', p.amount_refunded, 'currency', p.currency, 'failure_code', p.failure_code);
            -- Last: the audit chain's lock is held from here to commit.
            PERFORM audit_append(
                p_actor_type, p_actor_id, p_actor_repr, 'payment.capture', 'payment', p.id,
                v_view || jsonb_build_object('status', p.status, 'pending_operation', p.pending_operation),
                v_view || jsonb_build_object('status', 'succeeded', 'pending_operation', ''),
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
            RETURN QUERY SELECT v_now, w.balance + v_rest;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}({ARGS})")


class Migration(migrations.Migration):
    dependencies = [("payments", "0009_wallet_capture_function")]

    operations = [migrations.RunPython(install, remove)]
