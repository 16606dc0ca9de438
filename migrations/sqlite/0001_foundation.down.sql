-- The roles are cluster-wide and may serve other databases: they stay.
DROP TABLE IF EXISTS tenant_domains;
DROP TABLE IF EXISTS tenants;
DROP TABLE IF EXISTS auth_domains;
DROP TABLE IF EXISTS signing_keys;
DROP TABLE IF EXISTS project_keys;
DROP TABLE IF EXISTS projects;
DROP TABLE IF EXISTS operator_tokens;
DROP TABLE IF EXISTS shards;
