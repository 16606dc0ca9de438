-- Nothing on SQLite: Postgres's migration 0007 adds a stored function for
-- refresh rotation; SQLite rotates step by step (it has no round trips to
-- save). Kept so both backends share one migration numbering.
SELECT 1;
