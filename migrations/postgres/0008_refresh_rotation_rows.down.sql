-- Back to migration 0007's form of identity_rotate_refresh.
DROP FUNCTION identity_rotate_refresh(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT);
CREATE FUNCTION identity_rotate_refresh(
    p_now BIGINT, p_successor_id TEXT, p_project_id TEXT, p_token_hash TEXT,
    p_successor_hash TEXT, p_ip TEXT, p_user_agent TEXT, p_audit_id TEXT,
    p_touch_every_ms BIGINT
) RETURNS TABLE (session_id TEXT, user_id TEXT, touched BOOLEAN)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('role', 'identity_app', true),
            set_config('app.project_id', p_project_id, true);
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
        SELECT s.id, s.user_id, s.expires_at,
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
               p_now, jsonb_build_object('session_id', s.id)::text
          FROM s
    )
    SELECT s.id, s.user_id, s.stale FROM s;
END
$$;
REVOKE ALL ON FUNCTION identity_rotate_refresh(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION identity_rotate_refresh(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT) TO identity_app;
