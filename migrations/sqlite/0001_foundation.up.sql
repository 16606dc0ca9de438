-- Foundation: the same tables as migrations/postgres/0001 with portable types.
-- SQLite serves one node and one process: no roles and no RLS; the
-- `project_id` filter in every query is the boundary.

CREATE TABLE shards (
    id          TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
INSERT INTO shards (id, description, created_at)
VALUES ('default', 'the configured database', CAST(strftime('%s', 'now') AS INTEGER) * 1000);

CREATE TABLE operator_tokens (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    shard_id   TEXT NOT NULL REFERENCES shards (id),
    settings   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE project_keys (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    prefix      TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX project_keys_project ON project_keys (project_id, id);

CREATE TABLE signing_keys (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL,
    alg            TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    active         BOOLEAN NOT NULL,
    created_at     BIGINT NOT NULL,
    retired_at     BIGINT,
    publish_until  BIGINT
);
CREATE INDEX signing_keys_project ON signing_keys (project_id, created_at);

CREATE TABLE auth_domains (
    id                 TEXT PRIMARY KEY,
    project_id         TEXT NOT NULL,
    hostname           TEXT NOT NULL,
    verified           BOOLEAN NOT NULL,
    is_primary         BOOLEAN NOT NULL,
    verification_value TEXT NOT NULL,
    verified_at        BIGINT,
    created_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX auth_domains_verified_hostname ON auth_domains (hostname) WHERE verified;
CREATE UNIQUE INDEX auth_domains_project_hostname ON auth_domains (project_id, hostname);
CREATE UNIQUE INDEX auth_domains_one_primary ON auth_domains (project_id) WHERE is_primary;

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tenants_project ON tenants (project_id, id);

CREATE TABLE tenant_domains (
    id                 TEXT PRIMARY KEY,
    project_id         TEXT NOT NULL,
    tenant_id          TEXT NOT NULL,
    domain             TEXT NOT NULL,
    verified           BOOLEAN NOT NULL,
    verification_value TEXT NOT NULL,
    verified_at        BIGINT,
    created_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX tenant_domains_verified ON tenant_domains (project_id, domain) WHERE verified;
CREATE UNIQUE INDEX tenant_domains_tenant_domain ON tenant_domains (tenant_id, domain);
