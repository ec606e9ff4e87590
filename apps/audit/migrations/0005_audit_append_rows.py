"""Several audit rows appended to a chain in one call, and `audit_append` as its one-row case.

`audit_append_rows(...)` appends one row per element of its arrays (`p_actions`, `p_entity_types`,
`p_entity_ids`, `p_befores`, `p_afters`; who acts and through which request shared by all) to the
transaction's chain, in array order, and returns their hashes. It takes the chain's lock and reads
its tip once (`audit_chain_lock`, migration 0003), stamps and hashes each row under that lock in
turn, each row's `prev_hash` the hash of the row before it, exactly as migration 0004's
`audit_append` did one row at a time (the hash is `audit_canonical_json`'s sha256, what
`apps.audit.chain.chain_hash` recomputes), and writes them with one INSERT in chain order. A money
movement that audits many rows (a batch of transfers) pays one lock, one tip read and one INSERT.

`audit_append(...)` keeps its arguments and result and now calls it with one row, so the chain is
appended to in one place. The reverse of this migration restores 0004's `audit_append`.
"""

from importlib import import_module

from django.db import migrations

ROWS = "audit_append_rows"
ROWS_ARGS = (
    "varchar, varchar, varchar, varchar[], varchar[], varchar[], jsonb[], jsonb[], varchar, varchar, "
    "varchar, integer, bigint"
)
PREVIOUS = import_module("apps.audit.migrations.0004_audit_append_in_sql")


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")
    table = schema_editor.quote_name(apps.get_model("audit", "AuditLog")._meta.db_table)
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {ROWS}(
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_actions varchar[],
            p_entity_types varchar[], p_entity_ids varchar[], p_befores jsonb[], p_afters jsonb[],
            p_correlation_id varchar, p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS varchar[] LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            v_count integer := coalesce(cardinality(p_actions), 0);
            v_chain integer;
            v_prev varchar;
            v_created timestamptz[] := '{{}}';
            v_prevs varchar[] := '{{}}';
            v_hashes varchar[] := '{{}}';
        BEGIN
            IF v_count = 0 THEN
                RETURN v_hashes;
            END IF;
            SELECT lock.chain, lock.tip INTO v_chain, v_prev FROM audit_chain_lock(p_chains, p_lock_key) AS lock;
            IF v_prev IS NULL THEN
                v_prev := CASE WHEN v_chain = 0 THEN repeat('0', 64)
                    ELSE encode(sha256(convert_to('paydesk audit chain ' || v_chain, 'UTF8')), 'hex') END;
            END IF;
            FOR i IN 1 .. v_count LOOP
                -- Stamped under the chain's lock, so created_at never goes backwards along the chain.
                v_created[i] := clock_timestamp();
                v_prevs[i] := v_prev;
                v_prev := encode(sha256(convert_to({PREVIOUS.CANONICAL}(jsonb_build_object(
                    'created_at', to_char(v_created[i] AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00',
                    'actor_type', p_actor_type, 'actor_id', p_actor_id, 'actor_repr', p_actor_repr,
                    'action', p_actions[i], 'entity_type', p_entity_types[i], 'entity_id', p_entity_ids[i],
                    'before', p_befores[i], 'after', p_afters[i], 'correlation_id', p_correlation_id,
                    'ip', p_ip, 'user_agent', p_user_agent, 'prev_hash', v_prevs[i]
                )), 'UTF8')), 'hex');
                v_hashes[i] := v_prev;
            END LOOP;
            -- Identity ids in chain order: the tip is the chain's row of the highest id.
            INSERT INTO {table} (
                created_at, actor_type, actor_id, actor_repr, action, entity_type, entity_id, before,
                after, correlation_id, ip, user_agent, chain, prev_hash, hash
            )
            SELECT row_.created_at, p_actor_type, p_actor_id, p_actor_repr, row_.action, row_.entity_type,
                row_.entity_id, row_.before, row_.after, p_correlation_id, p_ip::inet, p_user_agent, v_chain,
                row_.prev_hash, row_.hash
            FROM unnest(v_created, p_actions, p_entity_types, p_entity_ids, p_befores, p_afters, v_prevs, v_hashes)
                WITH ORDINALITY AS row_(created_at, action, entity_type, entity_id, before, after, prev_hash, hash, n)
            ORDER BY row_.n;
            RETURN v_hashes;
        END;
        $$
        """,  # noqa: S608 - the table name is the model's own, quoted
        params=None,
    )
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {PREVIOUS.APPEND}(
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_action varchar,
            p_entity_type varchar, p_entity_id varchar, p_before jsonb, p_after jsonb,
            p_correlation_id varchar, p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS varchar LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            RETURN ({ROWS}(p_actor_type, p_actor_id, p_actor_repr, ARRAY[p_action], ARRAY[p_entity_type],
                ARRAY[p_entity_id], ARRAY[p_before], ARRAY[p_after], p_correlation_id, p_ip, p_user_agent,
                p_chains, p_lock_key))[1];
        END;
        $$
        """,
        params=None,
    )


def remove(apps, schema_editor):
    PREVIOUS.install(apps, schema_editor)  # audit_append as 0004 wrote it
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {ROWS}({ROWS_ARGS})")


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_audit_append_in_sql")]

    operations = [migrations.RunPython(install, remove)]
