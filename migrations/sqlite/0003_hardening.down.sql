DROP TABLE node_observations;
DROP TABLE data_migrations;
ALTER TABLE operator_tokens DROP COLUMN last_used_at;
ALTER TABLE operator_tokens DROP COLUMN source;
