-- OAuth: the same tables as migrations/postgres/0010.

CREATE TABLE oauth_providers (
    id                   TEXT PRIMARY KEY,
    project_id           TEXT NOT NULL,
    provider             TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    client_secret_sealed TEXT,
    scopes               TEXT NOT NULL,
    enabled              BOOLEAN NOT NULL,
    issuer               TEXT,
    endpoints            TEXT,
    apple_sealed         TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE UNIQUE INDEX oauth_providers_project_provider ON oauth_providers (project_id, provider);

CREATE TABLE identities (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    provider         TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    email            TEXT,
    created_at       BIGINT NOT NULL,
    last_sign_in_at  BIGINT
);
CREATE UNIQUE INDEX identities_subject ON identities (project_id, provider, provider_user_id);
CREATE INDEX identities_user ON identities (project_id, user_id);
