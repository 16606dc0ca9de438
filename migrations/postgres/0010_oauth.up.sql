-- OAuth and OpenID Connect sign-in: each project's provider configuration
-- (control plane; the client secret and Apple's signing key sealed with the
-- master key, never returned) and the identities that link a provider's
-- subject to a user (data plane).

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

ALTER TABLE oauth_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_providers FORCE ROW LEVEL SECURITY;
CREATE POLICY oauth_providers_project_isolation ON oauth_providers TO identity_app
    USING (project_id = current_setting('app.project_id', true))
    WITH CHECK (project_id = current_setting('app.project_id', true));
CREATE POLICY oauth_providers_control ON oauth_providers TO identity_control
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON oauth_providers TO identity_control, identity_app;

ALTER TABLE identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE identities FORCE ROW LEVEL SECURITY;
CREATE POLICY identities_project_isolation ON identities TO identity_app
    USING (project_id = current_setting('app.project_id', true))
    WITH CHECK (project_id = current_setting('app.project_id', true));
CREATE POLICY identities_control ON identities TO identity_control
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON identities TO identity_control, identity_app;
