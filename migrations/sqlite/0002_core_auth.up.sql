-- Core auth: the same tables as migrations/postgres/0002 with portable types.
-- No roles and no RLS on SQLite; the project_id filter is the boundary.

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    email_verified   BOOLEAN NOT NULL,
    name             TEXT,
    password_hash    TEXT,
    mfa_enabled      BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_project_email ON users (project_id, email_normalized);
CREATE INDEX users_project_id ON users (project_id, id);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    ip             TEXT,
    user_agent     TEXT,
    amr            TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions (project_id, user_id, id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE refresh_tokens (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    user_agent   TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    consumed_at  BIGINT,
    successor_id TEXT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (project_id, session_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

CREATE TABLE login_failures (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    email_key  TEXT NOT NULL,
    ip         TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX login_failures_account ON login_failures (project_id, email_key, created_at);
CREATE INDEX login_failures_age ON login_failures (created_at);

CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    type       TEXT NOT NULL,
    actor      TEXT,
    subject    TEXT,
    ip         TEXT,
    user_agent TEXT,
    outcome    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX audit_events_project ON audit_events (project_id, id);
CREATE INDEX audit_events_subject ON audit_events (project_id, subject, id);
