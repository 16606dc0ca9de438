-- Core hardening: operator tokens carry where they came from, when they
-- were last used and when they were revoked; data migrations written in Rust record what they did;
-- nodes record what operators should hear about from `identity doctor`.

ALTER TABLE operator_tokens ADD COLUMN source TEXT NOT NULL DEFAULT 'api';
ALTER TABLE operator_tokens ADD COLUMN last_used_at BIGINT;
-- Revoked tokens are kept (hashes only), so a revoked environment token
-- cannot come back at the next start.
ALTER TABLE operator_tokens ADD COLUMN revoked_at BIGINT;
UPDATE operator_tokens SET source = 'env' WHERE name = 'IDENTITY_ADMIN_TOKEN';
UPDATE operator_tokens SET source = 'bootstrap' WHERE name = 'bootstrap';

CREATE TABLE data_migrations (
    name       TEXT PRIMARY KEY,
    applied_at BIGINT NOT NULL,
    report     TEXT NOT NULL
);

CREATE TABLE node_observations (
    name        TEXT PRIMARY KEY,
    detail      TEXT NOT NULL,
    observed_at BIGINT NOT NULL
);
