"""A card payment's capture as one PostgreSQL function: one round trip for the money it books.

`payment_card_capture_v1(...)` books card money the gateway (or the provider, or reconciliation)
reports captured: it locks the payment, finds or creates the currency's `gateway_clearing` and
`platform_revenue` system accounts (`ledger_system_account_v1`, migration wallets 0007), writes the
journal entry and its two postings (clearing -> revenue), moves the payment to `succeeded` with
the captured amount, writes its `payment.succeeded` event and its `payment.<action>` audit row
(`audit_append`), exactly as the Python path (posting the capture, then `payment_move`) wrote them
(the audit row's `before` shows the captured amount already, as that path recorded it), and returns what the
service answers. `apps.payments.services.booking.capture_card_payment` is its only caller: it has
checked the transition (`apps.payments.states`) and passes the gateway's reference and card details
as the payment learnt them, and `extra` (strings only), which the event carries and the audit row
too, as `audit_record` scrubs it (`p_audit_extra`).
"""

from django.db import migrations

FUNCTION = "payment_card_capture_v1"
ARGS = (
    "varchar, bigint, varchar, jsonb, jsonb, varchar, varchar, varchar, varchar, varchar, varchar, varchar, "
    "varchar, varchar, varchar, varchar, varchar, varchar, integer, bigint"
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(app: str, model: str) -> str:
        return schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)

    payment = table("payments", "Payment")
    entry, posting = table("ledger", "JournalEntry"), table("ledger", "Posting")
    outbox = table("core", "OutboxEvent")
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}(
            p_payment varchar, p_amount bigint, p_action varchar, p_extra jsonb, p_audit_extra jsonb,
            p_gateway_reference varchar, p_card_brand varchar, p_card_last4 varchar,
            p_entry varchar, p_clearing varchar, p_revenue varchar, p_event varchar,
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar,
            p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS TABLE (updated_at timestamptz)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            p {payment}%ROWTYPE;
            v_clearing varchar;
            v_revenue varchar;
            v_now timestamptz;
            v_view jsonb;
        BEGIN
            SELECT * INTO p FROM {payment} AS x WHERE x.id = p_payment FOR UPDATE;
            IF p.id IS NULL OR p.method_type <> 'card'
                    OR p.status NOT IN ('pending', 'processing', 'reconcile', 'requires_capture')
                    OR p_amount <= 0 OR p_amount > p.amount THEN
                RAISE EXCEPTION '{FUNCTION}: % cannot be captured for %', p_payment, p_amount;
            END IF;

            v_now := clock_timestamp();
            v_clearing := ledger_system_account_v1('gateway_clearing', p.currency, p_clearing);
            v_revenue := ledger_system_account_v1('platform_revenue', p.currency, p_revenue);
            INSERT INTO {entry} (id, kind, memo, correlation_id, created_at)
                VALUES (p_entry, 'payment_capture', left('payment ' || p.id, 500), p_correlation_id, v_now);
            INSERT INTO {posting} (entry_id, account_id, amount, currency) VALUES
                (p_entry, v_clearing, -p_amount, p.currency),
                (p_entry, v_revenue, p_amount, p.currency);
            UPDATE {payment} AS x SET status = 'succeeded', amount_captured = p_amount,
                pending_operation = '', next_attempt_at = NULL,
                gateway_reference = left(p_gateway_reference, 255), card_brand = left(p_card_brand, 20),
                card_last4 = left(p_card_last4, 4), updated_at = v_now
                WHERE x.id = p.id;
            -- apps.payments.services.payloads.audit_view once the captured amount is known (as the
            -- Python path recorded it in `before` too).
            v_view := jsonb_build_object('amount', p.amount, 'amount_captured', p_amount,
                'amount_refunded', p.amount_refunded, 'currency', p.currency, 'failure_code', p.failure_code);
            -- The event as apps.core.outbox.emit_event writes it (counted as handed over; the caller
            -- hands it to the broker after commit), its payload as payment_payload builds it.
            INSERT INTO {outbox} (
                id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                published_at, publish_attempts, delivered_at
            ) VALUES (
                p_event, 'payment.succeeded', 'payment', p.id,
                jsonb_build_object('payment', p.id, 'owner', p.owner_id, 'customer_id', p.customer_id,
                    'status', 'succeeded', 'amount', p.amount, 'amount_captured', p_amount,
                    'amount_refunded', p.amount_refunded, 'currency', p.currency,
                    'failure_code', p.failure_code, 'subscription', nullif(p.subscription_id, ''))
                    || coalesce(p_extra, '{{}}'::jsonb),
                p_correlation_id, v_now, v_now, 1, NULL
            );
            -- Last: the audit chain's lock is held from here to commit.
            PERFORM audit_append(
                p_actor_type, p_actor_id, p_actor_repr, 'payment.' || p_action, 'payment', p.id,
                v_view || jsonb_build_object('status', p.status, 'pending_operation', p.pending_operation),
                v_view || jsonb_build_object('status', 'succeeded', 'pending_operation', '')
                    || coalesce(p_audit_extra, '{{}}'::jsonb),
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
            RETURN QUERY SELECT v_now;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}({ARGS})")


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0006_review_of_deposits"),
        ("wallets", "0007_deposit_credit_function"),
        ("audit", "0004_audit_append_in_sql"),
        ("ledger", "0002_integrity_triggers"),
        ("core", "0003_dead_letter"),
    ]

    operations = [migrations.RunPython(install, remove)]
