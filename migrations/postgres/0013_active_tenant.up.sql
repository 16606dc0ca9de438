-- The active tenant of a session (POST /v1/auth/session/tenant): its
-- access tokens carry the tenant, the member's role and permissions, and
-- the choice sticks to the session through refreshes.
ALTER TABLE sessions ADD COLUMN tenant_id TEXT;

-- identity_rotate_refresh_v3: 0008's v2 that also answers with the
-- session's active tenant and the user's current role in it (NULL when
-- they are no longer a member), so a refresh still takes one round trip.
-- A new name: the previous release keeps calling v2 during a rolling
-- upgrade (its tokens carry no tenant until it is replaced).
CREATE FUNCTION identity_rotate_refresh_v3(
    p_now BIGINT, p_successor_id TEXT, p_project_id TEXT, p_token_hash TEXT,
    p_successor_hash TEXT, p_ip TEXT, p_user_agent TEXT, p_audit_id TEXT,
    p_touch_every_ms BIGINT
) RETURNS TABLE (
    touched BOOLEAN,
    s_id TEXT, s_user_id TEXT, s_ip TEXT, s_user_agent TEXT, s_amr TEXT,
    s_created_at BIGINT, s_last_seen_at BIGINT, s_expires_at BIGINT,
    s_revoked_at BIGINT, s_verified_at BIGINT,
    u_row TEXT,
    s_tenant_id TEXT, m_role TEXT
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    scoped TEXT := current_setting('app.project_id', true);
BEGIN
    IF scoped IS NOT NULL AND scoped <> '' AND scoped <> p_project_id THEN
        RAISE EXCEPTION 'identity_rotate_refresh_v3: transaction is scoped to another project'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_catalog.set_config('role', 'identity_app', true),
            pg_catalog.set_config('app.project_id', p_project_id, true);
    RETURN QUERY
    WITH c AS (
        UPDATE refresh_tokens r SET consumed_at = p_now, successor_id = p_successor_id
         WHERE r.project_id = p_project_id AND r.token_hash = p_token_hash
           AND r.consumed_at IS NULL AND r.expires_at > p_now
           AND EXISTS (SELECT 1 FROM sessions s
                        WHERE s.project_id = p_project_id AND s.id = r.session_id
                          AND s.revoked_at IS NULL AND s.expires_at > p_now)
        RETURNING r.session_id
    ), s AS (
        SELECT s.*,
               (s.ip IS DISTINCT FROM p_ip OR s.user_agent IS DISTINCT FROM p_user_agent
                OR s.last_seen_at <= p_now - p_touch_every_ms) AS stale
          FROM sessions s
         WHERE s.project_id = p_project_id AND s.id IN (SELECT c.session_id FROM c)
    ), t AS (
        UPDATE sessions SET last_seen_at = p_now, ip = p_ip, user_agent = p_user_agent
         WHERE project_id = p_project_id AND id IN (SELECT s.id FROM s WHERE s.stale)
    ), n AS (
        INSERT INTO refresh_tokens (id, project_id, session_id, token_hash, user_agent, created_at, expires_at)
        SELECT p_successor_id, p_project_id, s.id, p_successor_hash, p_user_agent, p_now, s.expires_at FROM s
    ), a AS (
        INSERT INTO audit_events (id, project_id, type, actor, subject, ip, user_agent, outcome, created_at, data)
        SELECT p_audit_id, p_project_id, 'token.refreshed', s.user_id, s.user_id, p_ip, p_user_agent, 'success',
               p_now, pg_catalog.jsonb_build_object('session_id', s.id)::text
          FROM s
    )
    SELECT s.stale,
           s.id, s.user_id, s.ip, s.user_agent, s.amr,
           s.created_at, s.last_seen_at, s.expires_at, s.revoked_at, s.verified_at,
           pg_catalog.to_jsonb(u)::text,
           s.tenant_id, m.role
      FROM s JOIN users u ON u.project_id = p_project_id AND u.id = s.user_id
      LEFT JOIN tenant_members m ON m.project_id = p_project_id
                                AND m.tenant_id = s.tenant_id AND m.user_id = s.user_id;
END
$$;
REVOKE ALL ON FUNCTION identity_rotate_refresh_v3(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION identity_rotate_refresh_v3(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT) TO identity_app;
DO $pin$
BEGIN
    EXECUTE pg_catalog.format(
        'ALTER FUNCTION identity_rotate_refresh_v3(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT) SET search_path = %I, pg_catalog, pg_temp',
        current_schema());
END
$pin$;
