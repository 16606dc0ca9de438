-- Foundation: shards, operator tokens, projects and their keys, signing keys,
-- auth domains, tenants and tenant domains.
--
-- Two NOLOGIN roles carry every transaction the server runs:
--   identity_app      data-plane work, one project at a time (RLS applies)
--   identity_control  control-plane work, every project
-- The server switches to one of them at the start of each transaction, so RLS
-- holds even when it connects as the owner or a superuser.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'identity_app') THEN
        BEGIN
            CREATE ROLE identity_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'identity_control') THEN
        BEGIN
            CREATE ROLE identity_control NOLOGIN NOSUPERUSER NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'identity_app', 'MEMBER') THEN
        EXECUTE format('GRANT identity_app TO %I', current_user);
    END IF;
    IF NOT pg_has_role(current_user, 'identity_control', 'MEMBER') THEN
        EXECUTE format('GRANT identity_control TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO identity_app, identity_control;

CREATE TABLE shards (
    id          TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
INSERT INTO shards (id, description, created_at)
VALUES ('default', 'the configured database', (extract(epoch FROM now()) * 1000)::BIGINT);

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
-- A hostname serves one project once verified; unverified claims may overlap
-- so nobody can squat a name they do not control.
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

-- Control-plane-only tables: the data-plane role gets nothing on them.
GRANT SELECT, INSERT, UPDATE, DELETE ON shards, operator_tokens, projects TO identity_control;

-- Project-scoped tables: RLS, forced even for the owner.
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['project_keys', 'signing_keys', 'auth_domains', 'tenants', 'tenant_domains']
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
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO identity_app, identity_control', t);
    END LOOP;
END
$$;
