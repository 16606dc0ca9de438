-- Second factors: TOTP secrets (sealed with the master key) with the last
-- accepted time step (a code works once), recovery codes (hashed), login
-- challenges (the mfa_token, hashed, five attempts), and when each session
-- last proved a factor (step-up). Forced RLS like every data-plane table.

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

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['mfa_totp', 'mfa_recovery_codes', 'mfa_challenges']
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
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO identity_app', t);
    END LOOP;
END
$$;
