DROP TABLE node_observations;
DROP TABLE data_migrations;
DELETE FROM operator_tokens WHERE revoked_at IS NOT NULL;
ALTER TABLE operator_tokens DROP COLUMN revoked_at;
ALTER TABLE operator_tokens DROP COLUMN last_used_at;
ALTER TABLE operator_tokens DROP COLUMN source;
