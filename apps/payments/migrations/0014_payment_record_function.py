"""A payment's change recorded in SQL, written once for every payment function of the money engine.

- `payment_payload_v1(payment)`: what events say about a payment, as
  `apps.payments.services.payloads.payment_payload` builds it.
- `payment_audit_view_v1(payment)`: a payment as its audit rows show it, as `audit_view` does.
- `payment_record_v1(before, after, action, event_type, event, extra, audit_extra, at, who…)`:
  the change's `event_type` event (none when NULL; `payment_payload_v1(after)` and what `extra`
  adds), written waiting for the relay (`published_at` NULL, `publish_attempts` 0), then its
  `payment.<action>` audit row (`audit_append`): `after` as `payment_audit_view_v1` shows it with
  `audit_extra`, `before` the same amounts with the previous status and pending operation (as the
  Python path recorded it: its `before` already showed the amount captured or refunded). Last in
  its caller: the audit chain's lock is held from there to commit.
The payment functions' second versions (migrations 0015, 0016) record their change through it.
"""

from django.db import migrations

PAYLOAD, VIEW, RECORD = "payment_payload_v1", "payment_audit_view_v1", "payment_record_v1"
RECORD_ARGS = (
    "{payment}, {payment}, varchar, varchar, varchar, jsonb, jsonb, timestamptz, "
    "varchar, varchar, varchar, varchar, varchar, varchar, integer, bigint"
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(app: str, model: str) -> str:
        return schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)

    payment, outbox = table("payments", "Payment"), table("core", "OutboxEvent")
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {PAYLOAD}(p {payment}) RETURNS jsonb
        LANGUAGE sql STABLE AS $$
            SELECT jsonb_build_object('payment', p.id, 'owner', p.owner_id, 'customer_id', p.customer_id,
                'status', p.status, 'amount', p.amount, 'amount_captured', p.amount_captured,
                'amount_refunded', p.amount_refunded, 'currency', p.currency,
                'failure_code', p.failure_code, 'subscription', nullif(p.subscription_id, ''))
        $$
        """,
        params=None,
    )
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {VIEW}(p {payment}) RETURNS jsonb
        LANGUAGE sql STABLE AS $$
            SELECT jsonb_build_object('status', p.status, 'amount', p.amount,
                'amount_captured', p.amount_captured, 'amount_refunded', p.amount_refunded,
                'currency', p.currency, 'pending_operation', p.pending_operation,
                'failure_code', p.failure_code)
        $$
        """,
        params=None,
    )
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {RECORD}(
            p_before {payment}, p_after {payment}, p_action varchar, p_event_type varchar,
            p_event varchar, p_extra jsonb, p_audit_extra jsonb, p_now timestamptz,
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar,
            p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            v_view jsonb := {VIEW}(p_after);
        BEGIN
            IF p_event_type IS NOT NULL THEN
                INSERT INTO {outbox} (
                    id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                    published_at, publish_attempts, delivered_at
                ) VALUES (
                    p_event, p_event_type, 'payment', p_after.id,
                    {PAYLOAD}(p_after) || coalesce(p_extra, '{{}}'::jsonb),
                    p_correlation_id, p_now, NULL, 0, NULL
                );
            END IF;
            PERFORM audit_append(
                p_actor_type, p_actor_id, p_actor_repr, 'payment.' || p_action, 'payment', p_after.id,
                v_view || jsonb_build_object('status', p_before.status,
                    'pending_operation', p_before.pending_operation),
                v_view || coalesce(p_audit_extra, '{{}}'::jsonb),
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
        END;
        $$
        """,  # noqa: S608 - the table name is the model's own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    payment = schema_editor.quote_name(apps.get_model("payments", "Payment")._meta.db_table)
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {RECORD}({RECORD_ARGS.format(payment=payment)})")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {VIEW}({payment})")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {PAYLOAD}({payment})")


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0013_wallet_refund_function"),
        ("audit", "0004_audit_append_in_sql"),
        ("core", "0004_outbox_relay_triggers"),
    ]

    operations = [migrations.RunPython(install, remove)]
