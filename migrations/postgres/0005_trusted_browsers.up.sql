-- Trusted browsers: after a second factor with remember_browser, a browser
-- (bound to the user and its user agent) skips the challenge until it
-- expires or the user's credentials change. The token is stored hashed.

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

ALTER TABLE trusted_browsers ENABLE ROW LEVEL SECURITY;
ALTER TABLE trusted_browsers FORCE ROW LEVEL SECURITY;
CREATE POLICY trusted_browsers_project_isolation ON trusted_browsers TO identity_app
    USING (project_id = current_setting('app.project_id', true))
    WITH CHECK (project_id = current_setting('app.project_id', true));
CREATE POLICY trusted_browsers_control ON trusted_browsers TO identity_control
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON trusted_browsers TO identity_control, identity_app;
