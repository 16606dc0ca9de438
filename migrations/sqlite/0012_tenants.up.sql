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
