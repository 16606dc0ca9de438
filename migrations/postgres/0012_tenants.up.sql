-- Tenants as organisations, in the project's shard beside the users:
-- invitations (the token stored as SHA-256, one pending invitation per
-- tenant and address, 7 days) and groups inside a tenant.

CREATE TABLE invitations (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL,
    tenant_id        TEXT NOT NULL,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    role             TEXT NOT NULL,
    token_hash       TEXT NOT NULL,
    inviter_id       TEXT,
    inviter_name     TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    accepted_at      BIGINT,
    accepted_by      TEXT
);
CREATE UNIQUE INDEX invitations_token ON invitations (project_id, token_hash);
CREATE UNIQUE INDEX invitations_pending ON invitations (project_id, tenant_id, email_normalized)
    WHERE status = 'pending';
CREATE INDEX invitations_tenant ON invitations (project_id, tenant_id, created_at);

CREATE TABLE tenant_groups (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX tenant_groups_name ON tenant_groups (project_id, tenant_id, name);

CREATE TABLE group_members (
    project_id TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (project_id, tenant_id, user_id);

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY invitations_project_isolation ON invitations TO identity_app
    USING (project_id = current_setting('app.project_id', true))
    WITH CHECK (project_id = current_setting('app.project_id', true));
CREATE POLICY invitations_control ON invitations TO identity_control
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON invitations TO identity_control, identity_app;

ALTER TABLE tenant_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_groups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_groups_project_isolation ON tenant_groups TO identity_app
    USING (project_id = current_setting('app.project_id', true))
    WITH CHECK (project_id = current_setting('app.project_id', true));
CREATE POLICY tenant_groups_control ON tenant_groups TO identity_control
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_groups TO identity_control, identity_app;

ALTER TABLE group_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE group_members FORCE ROW LEVEL SECURITY;
CREATE POLICY group_members_project_isolation ON group_members TO identity_app
    USING (project_id = current_setting('app.project_id', true))
    WITH CHECK (project_id = current_setting('app.project_id', true));
CREATE POLICY group_members_control ON group_members TO identity_control
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON group_members TO identity_control, identity_app;
