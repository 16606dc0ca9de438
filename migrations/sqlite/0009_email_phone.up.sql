-- Email and phone: the same tables as migrations/postgres/0009.

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
ALTER TABLE users ADD COLUMN phone_verified BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN auto_join_role TEXT;
