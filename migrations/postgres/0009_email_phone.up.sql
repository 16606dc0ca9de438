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
