"""Second versions of the card payment functions: the same movements, written once where they repeat.

- `payment_card_capture_v2(...)` replaces `payment_card_capture_v1` (migration 0007);
- `payment_card_refund_v2(...)` replaces `payment_card_refund_v1` (migration 0008).
Each takes the same parameters and returns the same row as its first version, and writes the same
rows, but its entry through `ledger_post_v1` (migration ledger 0003) and its event and audit row
through `payment_record_v1` (migration 0014), with the event written waiting for the relay
(`published_at` NULL, `publish_attempts` 0) rather than marked handed over (which the outbox's
trigger undid anyway). The reverse restores the first versions.
"""

from importlib import import_module

from django.db import migrations

CAPTURE_V1 = import_module("apps.payments.migrations.0007_card_capture_function")
REFUND_V1 = import_module("apps.payments.migrations.0008_card_refund_function")
CAPTURE, REFUND = "payment_card_capture_v2", "payment_card_refund_v2"


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(app: str, model: str) -> str:
        return schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)

    payment, refund = table("payments", "Payment"), table("payments", "Refund")
    for previous in (CAPTURE_V1, REFUND_V1):
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {previous.FUNCTION}({previous.ARGS})")
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {CAPTURE}(
            p_payment varchar, p_amount bigint, p_action varchar, p_extra jsonb, p_audit_extra jsonb,
            p_gateway_reference varchar, p_card_brand varchar, p_card_last4 varchar,
            p_entry varchar, p_clearing varchar, p_revenue varchar, p_event varchar,
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar,
            p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS TABLE (updated_at timestamptz)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            p {payment}%ROWTYPE;
            v_after {payment}%ROWTYPE;
            v_now timestamptz;
        BEGIN
            SELECT * INTO p FROM {payment} AS x WHERE x.id = p_payment FOR UPDATE;
            IF p.id IS NULL OR p.method_type <> 'card'
                    OR p.status NOT IN ('pending', 'processing', 'reconcile', 'requires_capture')
                    OR p_amount <= 0 OR p_amount > p.amount THEN
                RAISE EXCEPTION '{CAPTURE}: % cannot be captured for %', p_payment, p_amount;
            END IF;

            v_now := clock_timestamp();
            PERFORM ledger_post_v1(p_entry, 'payment_capture', 'payment ' || p.id, p.currency,
                ARRAY[ledger_system_account_v1('gateway_clearing', p.currency, p_clearing),
                      ledger_system_account_v1('platform_revenue', p.currency, p_revenue)],
                ARRAY[-p_amount, p_amount], p_correlation_id, v_now);
            UPDATE {payment} AS x SET status = 'succeeded', amount_captured = p_amount,
                pending_operation = '', next_attempt_at = NULL,
                gateway_reference = left(p_gateway_reference, 255), card_brand = left(p_card_brand, 20),
                card_last4 = left(p_card_last4, 4), updated_at = v_now
                WHERE x.id = p.id
                RETURNING * INTO v_after;
            PERFORM payment_record_v1(p, v_after, p_action, 'payment.succeeded', p_event, p_extra,
                p_audit_extra, v_now, p_actor_type, p_actor_id, p_actor_repr, p_correlation_id, p_ip,
                p_user_agent, p_chains, p_lock_key);
            RETURN QUERY SELECT v_now;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {REFUND}(
            p_refund varchar, p_gateway_reference varchar, p_entry varchar, p_revenue varchar,
            p_clearing varchar, p_event varchar,
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar,
            p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS TABLE (payment_status varchar, amount_refunded bigint, updated_at timestamptz)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            p {payment}%ROWTYPE;
            r {refund}%ROWTYPE;
            v_after {payment}%ROWTYPE;
            v_now timestamptz;
            v_extra jsonb;
        BEGIN
            -- The payment, then the refund: the lock order of refund_settle.
            SELECT * INTO p FROM {payment} AS x
                WHERE x.id = (SELECT y.payment_id FROM {refund} AS y WHERE y.id = p_refund) FOR UPDATE;
            SELECT * INTO r FROM {refund} AS y WHERE y.id = p_refund FOR UPDATE;
            IF r.id IS NULL OR p.id IS NULL OR r.status <> 'pending' OR p.method_type <> 'card'
                    OR p.status <> 'succeeded' OR p.amount_refunded + r.amount > p.amount_captured THEN
                RAISE EXCEPTION '{REFUND}: % cannot be completed', p_refund;
            END IF;

            v_now := clock_timestamp();
            PERFORM ledger_post_v1(p_entry, 'refund', 'refund ' || r.id, p.currency,
                ARRAY[ledger_system_account_v1('platform_revenue', p.currency, p_revenue),
                      ledger_system_account_v1('gateway_clearing', p.currency, p_clearing)],
                ARRAY[-r.amount, r.amount], p_correlation_id, v_now);
            UPDATE {refund} AS y SET status = 'succeeded', gateway_reference = left(p_gateway_reference, 255),
                updated_at = v_now
                WHERE y.id = r.id;
            UPDATE {payment} AS x SET amount_refunded = x.amount_refunded + r.amount,
                status = CASE WHEN x.amount_refunded + r.amount = x.amount_captured THEN 'refunded' ELSE 'succeeded' END,
                pending_operation = '', next_attempt_at = NULL, updated_at = v_now
                WHERE x.id = p.id
                RETURNING * INTO v_after;
            v_extra := jsonb_build_object('refund', r.id, 'refund_amount', r.amount);
            PERFORM payment_record_v1(p, v_after, 'refund', 'payment.refunded', p_event, v_extra, v_extra,
                v_now, p_actor_type, p_actor_id, p_actor_repr, p_correlation_id, p_ip, p_user_agent,
                p_chains, p_lock_key);
            RETURN QUERY SELECT v_after.status, v_after.amount_refunded, v_now;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    for previous, name in ((CAPTURE_V1, CAPTURE), (REFUND_V1, REFUND)):
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}({previous.ARGS})")
        previous.install(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("payments", "0014_payment_record_function"), ("ledger", "0003_ledger_post_function")]

    operations = [migrations.RunPython(install, remove)]
