"""A payout's money movements as PostgreSQL functions of the money engine (apps.wallets.engine).

- `payout_payload_v1(payout)`: what events say about a payout, as
  `apps.payouts.services.booking.payout_payload` builds it; `payout_audit_view_v1(payout)`: a payout
  as its audit rows show it, as `audit_view` does.
- `payout_record_v1(after, before_status, action, event_type, event, extra, at, who…)`: the change's
  event (none when `event_type` is NULL) and its `payout.<action>` audit row (`audit_append`, last:
  the audit chain's lock is held from there to commit).
- `payout_create_v1(...)`: locks the wallet, judges the risk rules on it (under that lock, so two
  first payouts racing are judged one after the other), moves the amount from the wallet to the
  currency's `payouts_in_transit` system account through the wallet leg `wallet_post_v1`
  (migration wallets 0008: it refuses a frozen wallet, `PW002`, and a short balance, `PW004`,
  before writing anything), writes the payout row, its `payout.created` event and its audit row.
- `payout_pay_v1(...)`: an `in_transit` payout paid by the gateway: in transit -> the gateway's
  `gateway_clearing` account (`ledger_post_v1`, migration ledger 0003), the payout `paid`.
- `payout_reverse_v1(...)`: a payout `failed` (from pending or in transit) or `canceled` (from
  pending): a new entry puts the amount back from in transit into the wallet (even a frozen one:
  the money is the owner's), the payout's new state, its events and audit row.
Each function locks the payout before the wallet (creation has no payout to lock yet), the order
of its one caller, `apps.payouts.services`; a payout in a state the move does not start from is
refused with an internal error (the service has checked the transition on the locked row already).
"""

from django.db import migrations

PAYLOAD, VIEW, RECORD = "payout_payload_v1", "payout_audit_view_v1", "payout_record_v1"
CREATE, PAY, REVERSE = "payout_create_v1", "payout_pay_v1", "payout_reverse_v1"
WHO_PARAMS = (
    "p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_correlation_id varchar, "
    "p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint"
)
WHO = "p_actor_type, p_actor_id, p_actor_repr, p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key"
WHO_ARGS = "varchar, varchar, varchar, varchar, varchar, varchar, integer, bigint"
SIGNATURES = {
    RECORD: "{payout}, varchar, varchar, varchar, varchar, jsonb, timestamptz, " + WHO_ARGS,
    CREATE: "varchar, varchar, varchar, bigint, varchar, text, varchar, varchar, varchar, bigint, bigint, "
    "integer, varchar, varchar, varchar[], " + WHO_ARGS,
    PAY: "varchar, varchar, varchar, varchar, varchar, varchar, " + WHO_ARGS,
    REVERSE: "varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar[], " + WHO_ARGS,
}


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")

    def table(app: str, model: str) -> str:
        return schema_editor.quote_name(apps.get_model(app, model)._meta.db_table)

    payout, wallet = table("payouts", "Payout"), table("wallets", "Wallet")
    txn, outbox = table("wallets", "Transaction"), table("core", "OutboxEvent")
    for sql in (
        f"""
        CREATE OR REPLACE FUNCTION {PAYLOAD}(p {payout}) RETURNS jsonb LANGUAGE sql STABLE AS $$
            SELECT jsonb_build_object('payout', p.id, 'wallet', p.wallet_id, 'status', p.status,
                'amount', p.amount, 'currency', p.currency, 'failure_code', p.failure_code,
                'review_status', p.review_status)
        $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION {VIEW}(p {payout}) RETURNS jsonb LANGUAGE sql STABLE AS $$
            SELECT jsonb_build_object('status', p.status, 'amount', p.amount, 'currency', p.currency,
                'failure_code', p.failure_code, 'gateway_reference', p.gateway_reference,
                'review_status', p.review_status)
        $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION {RECORD}(
            p_after {payout}, p_before_status varchar, p_action varchar, p_event_type varchar,
            p_event varchar, p_extra jsonb, p_now timestamptz, {WHO_PARAMS}
        ) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            IF p_event_type IS NOT NULL THEN
                INSERT INTO {outbox} (
                    id, event_type, aggregate_type, aggregate_id, payload, correlation_id, created_at,
                    published_at, publish_attempts, delivered_at
                ) VALUES (
                    p_event, p_event_type, 'payout', p_after.id,
                    {PAYLOAD}(p_after) || coalesce(p_extra, '{{}}'::jsonb), p_correlation_id, p_now, NULL, 0, NULL
                );
            END IF;
            PERFORM audit_append(
                p_actor_type, p_actor_id, p_actor_repr, 'payout.' || p_action, 'payout', p_after.id,
                CASE WHEN p_before_status IS NULL THEN '{{}}'::jsonb
                     ELSE jsonb_build_object('status', p_before_status) END,
                {VIEW}(p_after) || coalesce(p_extra, '{{}}'::jsonb),
                p_correlation_id, p_ip, p_user_agent, p_chains, p_lock_key);
        END;
        $$
        """,  # noqa: S608 - the table name is the model's own, quoted
        f"""
        CREATE OR REPLACE FUNCTION {CREATE}(
            p_payout varchar, p_user varchar, p_wallet varchar, p_amount bigint, p_description varchar,
            p_destination_token text, p_destination_type varchar, p_last4 varchar, p_gateway varchar,
            p_review_threshold bigint, p_deposit_threshold bigint, p_deposit_window integer,
            p_entry varchar, p_transit varchar, p_events varchar[], {WHO_PARAMS}
        ) RETURNS TABLE (
            currency varchar, created_at timestamptz, review_reasons varchar[], balance bigint
        ) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            w {wallet}%ROWTYPE;
            v_after {payout}%ROWTYPE;
            v_now timestamptz;
            v_balance bigint;
            v_reasons jsonb := '[]'::jsonb;
            v_deposit_at timestamptz;
        BEGIN
            SELECT * INTO w FROM {wallet} AS x WHERE x.id = p_wallet FOR UPDATE;
            IF w.id IS NULL OR w.user_id <> p_user THEN
                RAISE EXCEPTION USING ERRCODE = 'PW001', MESSAGE = 'No such wallet: ''' || p_wallet || '''';
            END IF;
            v_now := clock_timestamp();

            -- The risk rules, judged on the locked wallet (apps.payouts.services.creating says why).
            IF p_amount >= p_review_threshold THEN
                v_reasons := v_reasons || '["amount_over_threshold"]'::jsonb;
            END IF;
            SELECT max(t.updated_at) INTO v_deposit_at FROM {txn} AS t
                WHERE t.destination_wallet_id = w.id AND t.type = 'deposit' AND t.status = 'completed'
                    AND t.amount >= p_deposit_threshold
                    AND t.updated_at >= v_now - make_interval(secs => p_deposit_window);
            IF v_deposit_at IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM {payout} AS q WHERE q.wallet_id = w.id AND q.created_at >= v_deposit_at
            ) THEN
                v_reasons := v_reasons || '["first_payout_after_large_deposit"]'::jsonb;
            END IF;

            v_balance := wallet_post_v1(w, -p_amount,
                ARRAY[ledger_system_account_v1('payouts_in_transit', w.currency, p_transit)], NULL,
                p_entry, 'payout', 'payout ' || p_payout, p_events[1],
                jsonb_build_object('payout', p_payout, 'journal_entry', p_entry, 'reason', 'payout'),
                'wallet', p_correlation_id, v_now);
            INSERT INTO {payout} (
                id, wallet_id, amount, currency, description, status, destination_token,
                destination_type, destination_last4, failure_code, failure_message, gateway,
                gateway_reference, attempts, next_attempt_at, review_reasons, review_status,
                review_decided_by_id, review_note, review_decided_at, created_at, updated_at
            ) VALUES (
                p_payout, w.id, p_amount, w.currency, p_description, 'pending', p_destination_token,
                p_destination_type, p_last4, NULL, NULL, p_gateway,
                '', 0, NULL, v_reasons, CASE WHEN jsonb_array_length(v_reasons) > 0 THEN 'open' ELSE '' END,
                NULL, '', NULL, v_now, v_now
            ) RETURNING * INTO v_after;
            PERFORM {RECORD}(v_after, NULL, 'create', 'payout.created', p_events[2],
                jsonb_build_object('journal_entry', p_entry), v_now, {WHO});
            RETURN QUERY SELECT w.currency, v_now,
                ARRAY(SELECT jsonb_array_elements_text(v_reasons))::varchar[], v_balance;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
        f"""
        CREATE OR REPLACE FUNCTION {PAY}(
            p_payout varchar, p_gateway_reference varchar, p_entry varchar, p_transit varchar,
            p_clearing varchar, p_event varchar, {WHO_PARAMS}
        ) RETURNS timestamptz LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            p {payout}%ROWTYPE;
            v_after {payout}%ROWTYPE;
            v_now timestamptz;
        BEGIN
            SELECT * INTO p FROM {payout} AS y WHERE y.id = p_payout FOR UPDATE;
            IF p.id IS NULL OR p.status <> 'in_transit' THEN
                RAISE EXCEPTION '{PAY}: % is not in transit', p_payout;
            END IF;
            v_now := clock_timestamp();
            PERFORM ledger_post_v1(p_entry, 'payout_paid', 'payout ' || p.id, p.currency,
                ARRAY[ledger_system_account_v1('payouts_in_transit', p.currency, p_transit),
                      ledger_system_account_v1('gateway_clearing', p.currency, p_clearing)],
                ARRAY[-p.amount, p.amount], p_correlation_id, v_now);
            UPDATE {payout} AS y SET status = 'paid',
                gateway_reference = coalesce(nullif(left(p_gateway_reference, 255), ''), y.gateway_reference),
                next_attempt_at = NULL, updated_at = v_now
                WHERE y.id = p.id RETURNING * INTO v_after;
            PERFORM {RECORD}(v_after, p.status, 'pay', 'payout.paid', p_event,
                jsonb_build_object('journal_entry', p_entry), v_now, {WHO});
            RETURN v_now;
        END;
        $$
        """,  # noqa: S608 - the table name is the model's own, quoted
        f"""
        CREATE OR REPLACE FUNCTION {REVERSE}(
            p_payout varchar, p_to varchar, p_action varchar, p_failure_code varchar,
            p_failure_message varchar, p_gateway_reference varchar, p_entry varchar, p_transit varchar,
            p_events varchar[], {WHO_PARAMS}
        ) RETURNS TABLE (updated_at timestamptz, balance bigint, wallet_user varchar)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            p {payout}%ROWTYPE;
            w {wallet}%ROWTYPE;
            v_after {payout}%ROWTYPE;
            v_now timestamptz;
            v_balance bigint;
        BEGIN
            -- The payout, then its wallet: the order of the callers, which hold the payout.
            SELECT * INTO p FROM {payout} AS y WHERE y.id = p_payout FOR UPDATE;
            SELECT * INTO w FROM {wallet} AS x WHERE x.id = p.wallet_id FOR UPDATE;
            IF p.id IS NULL OR w.id IS NULL
                    OR NOT ((p_to = 'canceled' AND p.status = 'pending')
                            OR (p_to = 'failed' AND p.status IN ('pending', 'in_transit'))) THEN
                RAISE EXCEPTION '{REVERSE}: % cannot become %', p_payout, p_to;
            END IF;
            v_now := clock_timestamp();
            -- Into the wallet even when frozen (no frozen check): the money never left, it is theirs.
            v_balance := wallet_post_v1(w, p.amount,
                ARRAY[ledger_system_account_v1('payouts_in_transit', p.currency, p_transit)], NULL,
                p_entry, 'payout_reversal', 'payout ' || p.id || ' ' || p_to, p_events[1],
                jsonb_build_object('payout', p.id, 'journal_entry', p_entry, 'reason', 'payout_reversal'),
                NULL, p_correlation_id, v_now);
            UPDATE {payout} AS y SET status = p_to,
                failure_code = left(p_failure_code, 64), failure_message = left(p_failure_message, 500),
                gateway_reference = coalesce(nullif(left(p_gateway_reference, 255), ''), y.gateway_reference),
                review_status = CASE WHEN y.review_status = 'open' THEN 'withdrawn' ELSE y.review_status END,
                next_attempt_at = NULL, updated_at = v_now
                WHERE y.id = p.id RETURNING * INTO v_after;
            PERFORM {RECORD}(v_after, p.status, p_action, 'payout.' || p_to, p_events[2],
                jsonb_build_object('journal_entry', p_entry), v_now, {WHO});
            RETURN QUERY SELECT v_now, v_balance, w.user_id;
        END;
        $$
        """,  # noqa: S608 - the table names are the models' own, quoted
    ):
        schema_editor.execute(sql, params=None)


def remove(apps, schema_editor):
    payout = schema_editor.quote_name(apps.get_model("payouts", "Payout")._meta.db_table)
    for name in (REVERSE, PAY, CREATE, RECORD):
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}({SIGNATURES[name].format(payout=payout)})")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {VIEW}({payout})")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {PAYLOAD}({payout})")


class Migration(migrations.Migration):
    dependencies = [
        ("payouts", "0001_initial"),
        ("wallets", "0008_wallet_post_function"),
        ("ledger", "0003_ledger_post_function"),
        ("audit", "0004_audit_append_in_sql"),
        ("core", "0004_outbox_relay_triggers"),
    ]

    operations = [migrations.RunPython(install, remove)]
