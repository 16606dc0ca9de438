-- Second factors: the same tables as migrations/postgres/0004 with portable
-- types. No roles and no RLS on SQLite; the project_id filter is the boundary.

CREATE TABLE mfa_totp (
    project_id    TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

CREATE TABLE mfa_recovery_codes (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX mfa_recovery_codes_user ON mfa_recovery_codes (project_id, user_id);

CREATE TABLE mfa_challenges (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL,
    first_factor TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    expires_at   BIGINT NOT NULL,
    consumed_at  BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);

ALTER TABLE sessions ADD COLUMN verified_at BIGINT;
UPDATE sessions SET verified_at = created_at;
