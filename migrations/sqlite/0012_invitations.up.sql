-- Invitations to join a tenant: the token stored as SHA-256, one pending
-- invitation per (tenant, address), 7 days.

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
