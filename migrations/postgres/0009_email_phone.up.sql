-- Email and phone: the transactional outbox (one table for every channel:
-- email and SMS now, webhooks later), the single-use codes and link tokens
-- of the email and phone flows, tenant memberships (filled by the
-- verified-domain auto-join), and the user's phone number.
--
-- outbox_messages: a message is written in the same transaction as the
-- token or change it carries. `payload` is sealed with the master key and
-- erased (NULL) once delivered; `recipient_hint` is a masked address for
-- operators and `recipient_hash` a keyed hash for per-address caps. A
-- claimed row has `next_attempt_at` pushed out by the delivery lease, so a
-- node that dies mid-delivery leaves it due again (at-least-once).
--
-- one_time_codes: link tokens stored as SHA-256, codes as a keyed HMAC
-- (six digits would fall to a dictionary of a million).

CREATE TABLE outbox_messages (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    recipient_hint  TEXT NOT NULL,
    recipient_hash  TEXT NOT NULL,
    payload         TEXT,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_messages_due ON outbox_messages (next_attempt_at) WHERE status = 'queued';
CREATE INDEX outbox_messages_project ON outbox_messages (project_id, status, created_at);
CREATE INDEX outbox_messages_recipient ON outbox_messages (project_id, recipient_hash, created_at);

CREATE TABLE one_time_codes (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    user_id     TEXT,
    email       TEXT,
    target      TEXT,
    token_hash  TEXT UNIQUE,
    code_hash   TEXT,
    attempts    INTEGER NOT NULL,
    data        TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX one_time_codes_email ON one_time_codes (project_id, purpose, email);
CREATE INDEX one_time_codes_user ON one_time_codes (project_id, purpose, user_id);
CREATE INDEX one_time_codes_expiry ON one_time_codes (expires_at);

CREATE TABLE tenant_members (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX tenant_members_tenant_user ON tenant_members (project_id, tenant_id, user_id);
CREATE INDEX tenant_members_user ON tenant_members (project_id, user_id);

ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN phone_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tenants ADD COLUMN auto_join_role TEXT;

ALTER TABLE outbox_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY outbox_messages_project_isolation ON outbox_messages TO identity_app
    USING (project_id = current_setting('app.project_id', true))
    WITH CHECK (project_id = current_setting('app.project_id', true));
CREATE POLICY outbox_messages_control ON outbox_messages TO identity_control
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox_messages TO identity_control, identity_app;

ALTER TABLE one_time_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE one_time_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY one_time_codes_project_isolation ON one_time_codes TO identity_app
    USING (project_id = current_setting('app.project_id', true))
    WITH CHECK (project_id = current_setting('app.project_id', true));
CREATE POLICY one_time_codes_control ON one_time_codes TO identity_control
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON one_time_codes TO identity_control, identity_app;

ALTER TABLE tenant_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_members_project_isolation ON tenant_members TO identity_app
    USING (project_id = current_setting('app.project_id', true))
    WITH CHECK (project_id = current_setting('app.project_id', true));
CREATE POLICY tenant_members_control ON tenant_members TO identity_control
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_members TO identity_control, identity_app;

-- identity_rotate_refresh, third form: the renewed session's user comes
-- back as its whole row in JSON (`u_row`), so a column added to users later
-- (the phone number now, profile fields next) needs no new function.
DROP FUNCTION identity_rotate_refresh(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT);
CREATE FUNCTION identity_rotate_refresh(
    p_now BIGINT, p_successor_id TEXT, p_project_id TEXT, p_token_hash TEXT,
    p_successor_hash TEXT, p_ip TEXT, p_user_agent TEXT, p_audit_id TEXT,
    p_touch_every_ms BIGINT
) RETURNS TABLE (
    touched BOOLEAN,
    s_id TEXT, s_user_id TEXT, s_ip TEXT, s_user_agent TEXT, s_amr TEXT,
    s_created_at BIGINT, s_last_seen_at BIGINT, s_expires_at BIGINT,
    s_revoked_at BIGINT, s_verified_at BIGINT,
    u_row TEXT
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    scoped TEXT := current_setting('app.project_id', true);
BEGIN
    IF scoped IS NOT NULL AND scoped <> '' AND scoped <> p_project_id THEN
        RAISE EXCEPTION 'identity_rotate_refresh: transaction is scoped to another project'
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
           pg_catalog.to_jsonb(u)::text
      FROM s JOIN users u ON u.project_id = p_project_id AND u.id = s.user_id;
END
$$;
REVOKE ALL ON FUNCTION identity_rotate_refresh(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION identity_rotate_refresh(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT) TO identity_app;
DO $pin$
BEGIN
    EXECUTE pg_catalog.format(
        'ALTER FUNCTION identity_rotate_refresh(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT) SET search_path = %I, pg_catalog, pg_temp',
        current_schema());
END
$pin$;
