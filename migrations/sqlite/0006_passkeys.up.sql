-- Passkeys: the same tables as migrations/postgres/0006.

CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    user_handle   TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    backed_up     BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE UNIQUE INDEX passkeys_credential ON passkeys (project_id, credential_id);
CREATE INDEX passkeys_user ON passkeys (project_id, user_id);
CREATE INDEX passkeys_handle ON passkeys (project_id, user_handle);

CREATE TABLE passkey_ceremonies (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    user_id     TEXT,
    state       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    consumed_at BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX passkey_ceremonies_expiry ON passkey_ceremonies (expires_at);
