-- Core auth on the data plane: users, sessions, rotating refresh tokens,
-- login failures (lockout), audit events. Every table carries project_id and
-- is under forced RLS like the foundation's project-scoped tables.

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

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'sessions', 'refresh_tokens', 'login_failures', 'audit_events']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY %I ON %I TO identity_app
               USING (project_id = current_setting(''app.project_id'', true))
               WITH CHECK (project_id = current_setting(''app.project_id'', true))',
            t || '_project_isolation', t);
        EXECUTE format(
            'CREATE POLICY %I ON %I TO identity_control USING (true) WITH CHECK (true)',
            t || '_control', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO identity_control', t);
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, sessions, refresh_tokens, login_failures TO identity_app;
-- Audit is append-only for the data plane.
GRANT SELECT, INSERT ON audit_events TO identity_app;
