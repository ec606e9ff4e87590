"""A card payment's refund as one PostgreSQL function: one round trip for the money it gives back.

`payment_card_refund_v1(...)` completes a pending refund of a card payment the gateway (or the
provider) reports refunded: it locks the payment, then the refund (the order of
`refund_settle`), finds or creates the currency's `platform_revenue` and `gateway_clearing` system
accounts (`ledger_system_account_v1`), writes the journal entry and its two postings (revenue ->
clearing), marks the refund `succeeded` with the gateway's reference, adds its amount to the
payment's `amount_refunded` and moves the payment to `refunded` once everything captured is given
back (`succeeded` before), and writes its `payment.refunded` event and its `payment.refund` audit
row exactly as `complete_refund` wrote them (the audit row's `before` shows the refunded amount
already, as that path recorded it). `apps.payments.services.booking.complete_refund` is its only
caller, for card payments (a wallet's refund credits the wallet in Python): it has checked the
transition (`apps.payments.states`).
"""

from django.db import migrations

FUNCTION = "payment_card_refund_v1"
ARGS = (
    "varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, "
    "varchar, varchar, integer, bigint"
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(app: str, model: str) -> str:
        return schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)

    payment, refund = table("payments", "Payment"), table("payments", "Refund")
    entry, posting = table("ledger", "JournalEntry"), table("ledger", "Posting")
    outbox = table("core", "OutboxEvent")
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}(
            p_refund varchar, p_gateway_reference varchar, p_entry varchar, p_revenue varchar,
            p_clearing varchar, p_event varchar,
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar,
            p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS TABLE (payment_status varchar, amount_refunded bigint, updated_at timestamptz)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            p {payment}%ROWTYPE;
            r {refund}%ROWTYPE;
            v_revenue varchar;
            v_clearing varchar;
            v_refunded bigint;
            v_status varchar;
            v_now timestamptz;
            v_view jsonb;
            v_extra jsonb;
        BEGIN
            -- The payment, then the refund: the lock order of refund_settle.
            SELECT * INTO p FROM {payment} AS x
                WHERE x.id = (SELECT y.payment_id FROM {refund} AS y WHERE y.id = p_refund) FOR UPDATE;
            SELECT * INTO r FROM {refund} AS y WHERE y.id = p_refund FOR UPDATE;
            IF r.id IS NULL OR p.id IS NULL OR r.status <> 'pending' OR p.method_type <> 'card'
                    OR p.status <> 'succeeded' OR p.amount_refunded + r.amount > p.amount_captured THEN
                RAISE EXCEPTION '{FUNCTION}: % cannot be completed', p_refund;
            END IF;

            v_now := clock_timestamp();
            v_revenue := ledger_system_account_v1('platform_revenue', p.currency, p_revenue);
            v_clearing := ledger_system_account_v1('gateway_clearing', p.currency, p_clearing);
            INSERT INTO {entry} (id, kind, memo, correlation_id, created_at)
                VALUES (p_entry, 'refund', left('refund ' || r.id, 500), p_correlation_id, v_now);
            INSERT INTO {posting} (entry_id, account_id, amount, currency) VALUES
                (p_entry, v_revenue, -r.amount, p.currency),
                (p_entry, v_clearing, r.amount, p.currency);
            UPDATE {refund} AS y SET status = 'succeeded', gateway_reference = left(p_gateway_reference, 255),
                updated_at = v_now
                WHERE y.id = r.id;
            v_refunded := p.amount_refunded + r.amount;
            v_status := CASE WHEN v_refunded = p.amount_captured THEN 'refunded' ELSE 'succeeded' END;
            UPDATE {payment} AS x SET status = v_status, amount_refunded = v_refunded,
                pending_operation = '', next_attempt_at = NULL, updated_at = v_now
                WHERE x.id = p.id;
            -- apps.payments.services.payloads.audit_view once the refunded amount is known (as the
            -- Python path recorded it in `before` too), and what the refund adds.
            v_view := jsonb_build_object('amount', p.amount, 'amount_captured', p.amount_captured,
                'amount_refunded', v_refunded, 'currency', p.currency, 'failure_code', p.failure_code);
            v_extra := jsonb_build_object('refund', r.id, 'refund_amount', r.amount);
            -- The event as apps.core.outbox.emit_event writes it (counted as handed over; the caller
            -- hands it to the broker after commit), its payload as payment_payload builds it.
            INSERT INTO {outbox} (
                id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                published_at, publish_attempts, delivered_at
            ) VALUES (
                p_event, 'payment.refunded', 'payment', p.id,
                jsonb_build_object('payment', p.id, 'owner', p.owner_id, 'customer_id', p.customer_id,
                    'status', v_status, 'amount', p.amount, 'amount_captured', p.amount_captured,
                    'amount_refunded', v_refunded, 'currency', p.currency,
                    'failure_code', p.failure_code, 'subscription', nullif(p.subscription_id, ''))
                    || v_extra,
                p_correlation_id, v_now, v_now, 1, NULL
            );
            -- Last: the audit chain's lock is held from here to commit.
            PERFORM audit_append(
                p_actor_type, p_actor_id, p_actor_repr, 'payment.refund', 'payment', p.id,
                v_view || jsonb_build_object('status', p.status, 'pending_operation', p.pending_operation),
                v_view || jsonb_build_object('status', v_status, 'pending_operation', '') || v_extra,
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
            RETURN QUERY SELECT v_status, v_refunded, v_now;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}({ARGS})")


class Migration(migrations.Migration):
    dependencies = [("payments", "0007_card_capture_function")]

    operations = [migrations.RunPython(install, remove)]
