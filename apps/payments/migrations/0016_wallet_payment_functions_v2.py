"""Second versions of the wallet payment functions: their wallet leg and their record written once.

Each replaces its first version with the same parameters, result and rows written:
`payment_wallet_capture_v2` (0009), `payment_wallet_hold_capture_v2` (0010),
`payment_wallet_hold_v2` (0011), `payment_wallet_hold_release_v2` (0012),
`payment_wallet_refund_v2` (0013). What each wrote again for its wallet (the frozen and funds
refusals naming their parameter, the entry and its postings, the balance, the `wallet.funds_*`
event) is one call of the wallet leg `wallet_post_v1` (migration wallets 0008); the payment's
event and audit row one call of `payment_record_v1` (migration 0014). Their events are written
waiting for the relay (`published_at` NULL, `publish_attempts` 0). The reverse restores the first
versions.
"""

from importlib import import_module

from django.db import migrations

PREVIOUS = {
    "payment_wallet_capture_v2": import_module("apps.payments.migrations.0009_wallet_capture_function"),
    "payment_wallet_hold_capture_v2": import_module(
        "apps.payments.migrations.0010_wallet_hold_capture_function"
    ),
    "payment_wallet_hold_v2": import_module("apps.payments.migrations.0011_wallet_hold_function"),
    "payment_wallet_hold_release_v2": import_module(
        "apps.payments.migrations.0012_wallet_hold_release_function"
    ),
    "payment_wallet_refund_v2": import_module("apps.payments.migrations.0013_wallet_refund_function"),
}
# Who acts and through which request, the audit chains and their lock: every function's last eight.
WHO = "p_actor_type, p_actor_id, p_actor_repr, p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key"
WHO_PARAMS = (
    "p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar, "
    "p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint"
)


def functions(payment: str, refund: str, wallet: str) -> list[str]:
    rows = f"p {payment}%ROWTYPE; w {wallet}%ROWTYPE; v_after {payment}%ROWTYPE; v_now timestamptz; v_balance bigint;"

    def new_wallet_payment(name: str) -> str:
        """Locks a new wallet payment's wallet, then the payment (the order of the creating service,
        which holds the wallet), and refuses a payment that is not a new wallet payment."""
        return f"""SELECT * INTO w FROM {wallet} AS x
                WHERE x.id = (SELECT y.wallet_id FROM {payment} AS y WHERE y.id = p_payment) FOR UPDATE;
            SELECT * INTO p FROM {payment} AS y WHERE y.id = p_payment FOR UPDATE;
            IF p.id IS NULL OR w.id IS NULL OR p.method_type <> 'wallet' OR p.status <> 'pending'
                    OR p.amount_captured <> 0 THEN
                RAISE EXCEPTION '{name}: % is not a new wallet payment', p_payment;
            END IF;"""  # noqa: S608 - the table names are the models' own, quoted

    return [
        f"""
        CREATE OR REPLACE FUNCTION payment_wallet_capture_v2(
            p_payment varchar, p_entry varchar, p_revenue varchar, p_events varchar[], {WHO_PARAMS}
        ) RETURNS TABLE (updated_at timestamptz, balance bigint) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE {rows}
        BEGIN
            {new_wallet_payment("payment_wallet_capture_v2")}

            v_now := clock_timestamp();
            v_balance := wallet_post_v1(w, -p.amount,
                ARRAY[ledger_system_account_v1('platform_revenue', p.currency, p_revenue)], NULL,
                p_entry, 'payment_capture', 'payment ' || p.id, p_events[1],
                jsonb_build_object('journal_entry', p_entry, 'reason', 'payment_capture'),
                'payment_method', p_correlation_id, v_now);
            UPDATE {payment} AS y SET status = 'succeeded', amount_captured = p.amount,
                pending_operation = '', next_attempt_at = NULL, updated_at = v_now
                WHERE y.id = p.id RETURNING * INTO v_after;
            PERFORM payment_record_v1(p, v_after, 'capture', 'payment.succeeded', p_events[2], NULL, NULL,
                v_now, {WHO});
            RETURN QUERY SELECT v_now, v_balance;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        f"""
        CREATE OR REPLACE FUNCTION payment_wallet_hold_capture_v2(
            p_payment varchar, p_amount bigint, p_entry varchar, p_holds varchar, p_revenue varchar,
            p_events varchar[], {WHO_PARAMS}
        ) RETURNS TABLE (updated_at timestamptz, balance bigint) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE {rows}
        BEGIN
            -- The payment, then its wallet: the order of the callers, which hold the payment.
            SELECT * INTO p FROM {payment} AS y WHERE y.id = p_payment FOR UPDATE;
            SELECT * INTO w FROM {wallet} AS x WHERE x.id = p.wallet_id FOR UPDATE;
            IF p.id IS NULL OR w.id IS NULL OR p.method_type <> 'wallet'
                    OR p.status NOT IN ('requires_capture', 'in_review')
                    OR p_amount <= 0 OR p_amount > p.amount THEN
                RAISE EXCEPTION 'payment_wallet_hold_capture_v2: % cannot capture %', p_payment, p_amount;
            END IF;

            v_now := clock_timestamp();
            -- The holds give `p_amount` to revenue and the rest back to the wallet (no wallet line
            -- and no wallet event when everything is captured; a frozen wallet is refused all the same).
            v_balance := wallet_post_v1(w, p.amount - p_amount,
                ARRAY[ledger_system_account_v1('wallet_holds', p.currency, p_holds),
                      ledger_system_account_v1('platform_revenue', p.currency, p_revenue)],
                ARRAY[-p.amount, p_amount],
                p_entry, 'payment_capture', 'payment ' || p.id, p_events[1],
                jsonb_build_object('journal_entry', p_entry, 'reason', 'payment_capture'),
                'payment_method', p_correlation_id, v_now);
            UPDATE {payment} AS y SET status = 'succeeded', amount_captured = p_amount,
                pending_operation = '', next_attempt_at = NULL, updated_at = v_now
                WHERE y.id = p.id RETURNING * INTO v_after;
            PERFORM payment_record_v1(p, v_after, 'capture', 'payment.succeeded', p_events[2], NULL, NULL,
                v_now, {WHO});
            RETURN QUERY SELECT v_now, v_balance;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        f"""
        CREATE OR REPLACE FUNCTION payment_wallet_hold_v2(
            p_payment varchar, p_review boolean, p_entry varchar, p_holds varchar, p_event varchar,
            {WHO_PARAMS}
        ) RETURNS TABLE (updated_at timestamptz, balance bigint) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE {rows}
        BEGIN
            {new_wallet_payment("payment_wallet_hold_v2")}

            v_now := clock_timestamp();
            v_balance := wallet_post_v1(w, -p.amount,
                ARRAY[ledger_system_account_v1('wallet_holds', p.currency, p_holds)], NULL,
                p_entry, 'payment_hold', 'hold for ' || p.id, p_event,
                jsonb_build_object('journal_entry', p_entry, 'reason', 'payment_hold'),
                'payment_method', p_correlation_id, v_now);
            -- Held for review, the payment stays: the caller opens the review (its own row and event).
            IF NOT p_review THEN
                UPDATE {payment} AS y SET status = 'requires_capture', pending_operation = '',
                    next_attempt_at = NULL, updated_at = v_now
                    WHERE y.id = p.id RETURNING * INTO v_after;
                PERFORM payment_record_v1(p, v_after, 'authorize', NULL, NULL, NULL, NULL, v_now, {WHO});
            END IF;
            RETURN QUERY SELECT v_now, v_balance;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        f"""
        CREATE OR REPLACE FUNCTION payment_wallet_hold_release_v2(
            p_payment varchar, p_metadata jsonb, p_entry varchar, p_holds varchar, p_events varchar[],
            {WHO_PARAMS}
        ) RETURNS TABLE (updated_at timestamptz, balance bigint) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE {rows}
        BEGIN
            -- The payment, then its wallet: the order of the callers, which hold the payment.
            SELECT * INTO p FROM {payment} AS y WHERE y.id = p_payment FOR UPDATE;
            SELECT * INTO w FROM {wallet} AS x WHERE x.id = p.wallet_id FOR UPDATE;
            IF p.id IS NULL OR w.id IS NULL OR p.method_type <> 'wallet'
                    OR p.status NOT IN ('requires_capture', 'in_review') OR p.amount_captured <> 0 THEN
                RAISE EXCEPTION 'payment_wallet_hold_release_v2: % holds nothing to release', p_payment;
            END IF;

            v_now := clock_timestamp();
            v_balance := wallet_post_v1(w, p.amount,
                ARRAY[ledger_system_account_v1('wallet_holds', p.currency, p_holds)], NULL,
                p_entry, 'payment_release', 'release ' || p.id, p_events[1],
                jsonb_build_object('journal_entry', p_entry, 'reason', 'payment_release'),
                'payment_method', p_correlation_id, v_now);
            UPDATE {payment} AS y SET status = 'canceled', metadata = coalesce(p_metadata, y.metadata),
                pending_operation = '', next_attempt_at = NULL, updated_at = v_now
                WHERE y.id = p.id RETURNING * INTO v_after;
            PERFORM payment_record_v1(p, v_after, 'cancel', 'payment.canceled', p_events[2], NULL, NULL,
                v_now, {WHO});
            RETURN QUERY SELECT v_now, v_balance;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        f"""
        CREATE OR REPLACE FUNCTION payment_wallet_refund_v2(
            p_refund varchar, p_entry varchar, p_revenue varchar, p_events varchar[], {WHO_PARAMS}
        ) RETURNS TABLE (payment_status varchar, amount_refunded bigint, updated_at timestamptz)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE {rows} r {refund}%ROWTYPE; v_extra jsonb;
        BEGIN
            -- The payment, the refund, then the wallet: the lock order of refund_open.
            SELECT * INTO p FROM {payment} AS x
                WHERE x.id = (SELECT y.payment_id FROM {refund} AS y WHERE y.id = p_refund) FOR UPDATE;
            SELECT * INTO r FROM {refund} AS y WHERE y.id = p_refund FOR UPDATE;
            SELECT * INTO w FROM {wallet} AS z WHERE z.id = p.wallet_id FOR UPDATE;
            IF r.id IS NULL OR p.id IS NULL OR w.id IS NULL OR r.status <> 'pending'
                    OR p.method_type <> 'wallet' OR p.status <> 'succeeded'
                    OR p.amount_refunded + r.amount > p.amount_captured THEN
                RAISE EXCEPTION 'payment_wallet_refund_v2: % cannot be completed', p_refund;
            END IF;

            v_now := clock_timestamp();
            -- Into the wallet even when frozen (no frozen check): a refund has nowhere else to go.
            v_balance := wallet_post_v1(w, r.amount,
                ARRAY[ledger_system_account_v1('platform_revenue', p.currency, p_revenue)], NULL,
                p_entry, 'refund', 'refund ' || r.id, p_events[1],
                jsonb_build_object('journal_entry', p_entry, 'reason', 'refund'),
                NULL, p_correlation_id, v_now);
            UPDATE {refund} AS y SET status = 'succeeded', updated_at = v_now WHERE y.id = r.id;
            UPDATE {payment} AS x SET amount_refunded = x.amount_refunded + r.amount,
                status = CASE WHEN x.amount_refunded + r.amount = x.amount_captured
                    THEN 'refunded' ELSE 'succeeded' END,
                pending_operation = '', next_attempt_at = NULL, updated_at = v_now
                WHERE x.id = p.id RETURNING * INTO v_after;
            v_extra := jsonb_build_object('refund', r.id, 'refund_amount', r.amount);
            PERFORM payment_record_v1(p, v_after, 'refund', 'payment.refunded', p_events[2], v_extra, v_extra,
                v_now, {WHO});
            RETURN QUERY SELECT v_after.status, v_after.amount_refunded, v_now;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
    ]


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(app: str, model: str) -> str:
        return schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)

    for previous in PREVIOUS.values():
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {previous.FUNCTION}({previous.ARGS})")
    for sql in functions(
        table("payments", "Payment"), table("payments", "Refund"), table("wallets", "Wallet")
    ):
        schema_editor.execute(sql, params=None)


def remove(apps, schema_editor):
    for name, previous in PREVIOUS.items():
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}({previous.ARGS})")
        previous.install(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0015_card_functions_v2"),
        ("wallets", "0008_wallet_post_function"),
    ]

    operations = [migrations.RunPython(install, remove)]
