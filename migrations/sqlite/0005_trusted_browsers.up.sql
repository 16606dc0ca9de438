-- Trusted browsers: the same table as migrations/postgres/0005.

CREATE TABLE trusted_browsers (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_agent TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX trusted_browsers_user ON trusted_browsers (project_id, user_id);
CREATE INDEX trusted_browsers_expiry ON trusted_browsers (expires_at);
