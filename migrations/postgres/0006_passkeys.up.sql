-- Passkeys (WebAuthn): each credential as webauthn-rs serialises it (public
-- key, counter, backup state: nothing secret), found by credential id or by
-- the user handle a discoverable credential returns; and the ceremony state
-- between begin and finish (5 minutes, single-use).

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

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['passkeys', 'passkey_ceremonies']
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
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO identity_control, identity_app', t);
    END LOOP;
END
$$;
