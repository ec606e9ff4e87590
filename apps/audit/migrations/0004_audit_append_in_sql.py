"""The audit chain's append in SQL, for money movements that run as one PostgreSQL function.

`audit_append(...)` locks the transaction's chain (`audit_chain_lock`), reads its tip, stamps the row
under the lock and computes its hash exactly as `apps.audit.chain.chain_hash` recomputes it: the
sha256 of the canonical JSON of the chained fields (sorted keys, `,`/`:` separators, ASCII escapes
as Python's `json.dumps(..., ensure_ascii=True)` writes them). The caller passes the IP address
already in the form `chain_hash` writes (Python's `ipaddress`), which PostgreSQL's `inet` output
does not always match (IPv4-mapped IPv6). `audit_canonical_json` is that
encoder for what such a row holds (strings, integers, booleans, nulls, objects and arrays of them);
non-integer numbers are refused rather than hashed in a form Python would not reproduce.
"""

from django.db import migrations

JSON_STRING = "audit_json_string"
CANONICAL = "audit_canonical_json"
APPEND = "audit_append"
APPEND_ARGS = "varchar, varchar, varchar, varchar, varchar, varchar, jsonb, jsonb, varchar, varchar, varchar, integer, bigint"


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        raise RuntimeError("Paydesk runs on PostgreSQL only")
    table = schema_editor.quote_name(apps.get_model("audit", "AuditLog")._meta.db_table)
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {JSON_STRING}(value text) RETURNS text
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
        DECLARE
            out text := '';
            ch text;
            code integer;
        BEGIN
            IF value ~ '^[ -~]*$' AND strpos(value, '"') = 0 AND strpos(value, E'\\\\') = 0 THEN
                RETURN '"' || value || '"';
            END IF;
            FOREACH ch IN ARRAY regexp_split_to_array(value, '') LOOP
                code := ascii(ch);
                IF ch = '"' THEN out := out || E'\\\\"';
                ELSIF ch = E'\\\\' THEN out := out || E'\\\\\\\\';
                ELSIF code = 10 THEN out := out || E'\\\\n';
                ELSIF code = 13 THEN out := out || E'\\\\r';
                ELSIF code = 9 THEN out := out || E'\\\\t';
                ELSIF code = 8 THEN out := out || E'\\\\b';
                ELSIF code = 12 THEN out := out || E'\\\\f';
                ELSIF code BETWEEN 32 AND 126 THEN out := out || ch;
                ELSIF code < 65536 THEN out := out || E'\\\\u' || lpad(to_hex(code), 4, '0');
                ELSE
                    code := code - 65536;
                    out := out || E'\\\\u' || to_hex(55296 + (code >> 10))
                               || E'\\\\u' || to_hex(56320 + (code & 1023));
                END IF;
            END LOOP;
            RETURN '"' || out || '"';
        END;
        $$
        """,
        params=None,
    )
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {CANONICAL}(value jsonb) RETURNS text
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
        BEGIN
            IF value IS NULL THEN
                RETURN 'null';
            END IF;
            CASE jsonb_typeof(value)
                WHEN 'object' THEN
                    RETURN '{{' || coalesce((
                        SELECT string_agg({JSON_STRING}(key) || ':' || {CANONICAL}(item), ',' ORDER BY key COLLATE "C")
                        FROM jsonb_each(value) AS pairs(key, item)
                    ), '') || '}}';
                WHEN 'array' THEN
                    RETURN '[' || coalesce((
                        SELECT string_agg({CANONICAL}(item), ',' ORDER BY position)
                        FROM jsonb_array_elements(value) WITH ORDINALITY AS items(item, position)
                    ), '') || ']';
                WHEN 'string' THEN
                    RETURN {JSON_STRING}(value #>> '{{}}');
                WHEN 'number' THEN
                    IF (value #>> '{{}}')::numeric <> trunc((value #>> '{{}}')::numeric) THEN
                        RAISE EXCEPTION 'audit rows hashed in SQL hold integers only, got %', value;
                    END IF;
                    RETURN trunc((value #>> '{{}}')::numeric)::text;
                ELSE
                    RETURN value::text;
            END CASE;
        END;
        $$
        """,  # noqa: S608 - only this migration's own function names are interpolated
        params=None,
    )
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {APPEND}(
            p_actor_type varchar, p_actor_id varchar, p_actor_repr varchar, p_action varchar,
            p_entity_type varchar, p_entity_id varchar, p_before jsonb, p_after jsonb,
            p_correlation_id varchar, p_ip varchar, p_user_agent varchar, p_chains integer, p_lock_key bigint
        ) RETURNS varchar LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            v_chain integer;
            v_prev varchar;
            v_created timestamptz;
            v_hash varchar;
        BEGIN
            SELECT lock.chain, lock.tip INTO v_chain, v_prev FROM audit_chain_lock(p_chains, p_lock_key) AS lock;
            IF v_prev IS NULL THEN
                v_prev := CASE WHEN v_chain = 0 THEN repeat('0', 64)
                    ELSE encode(sha256(convert_to('paydesk audit chain ' || v_chain, 'UTF8')), 'hex') END;
            END IF;
            -- Stamped under the chain's lock, so created_at never goes backwards along the chain.
            v_created := clock_timestamp();
            v_hash := encode(sha256(convert_to({CANONICAL}(jsonb_build_object(
                'created_at', to_char(v_created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00',
                'actor_type', p_actor_type, 'actor_id', p_actor_id, 'actor_repr', p_actor_repr,
                'action', p_action, 'entity_type', p_entity_type, 'entity_id', p_entity_id,
                'before', p_before, 'after', p_after, 'correlation_id', p_correlation_id,
                'ip', p_ip, 'user_agent', p_user_agent, 'prev_hash', v_prev
            )), 'UTF8')), 'hex');
            INSERT INTO {table} (
                created_at, actor_type, actor_id, actor_repr, action, entity_type, entity_id, before,
                after, correlation_id, ip, user_agent, chain, prev_hash, hash
            ) VALUES (
                v_created, p_actor_type, p_actor_id, p_actor_repr, p_action, p_entity_type, p_entity_id,
                p_before, p_after, p_correlation_id, p_ip::inet, p_user_agent, v_chain, v_prev, v_hash
            );
            RETURN v_hash;
        END;
        $$
        """,  # noqa: S608 - the table name is the model's own, quoted
        params=None,
    )


def remove(apps, schema_editor):
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {APPEND}({APPEND_ARGS})")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {CANONICAL}(jsonb)")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {JSON_STRING}(text)")


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_audit_chains")]

    operations = [migrations.RunPython(install, remove)]
