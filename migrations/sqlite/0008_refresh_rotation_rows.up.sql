-- Nothing on SQLite: Postgres's migration 0008 adds a second stored
-- refresh function beside 0007's. Kept so both backends share one migration numbering.
SELECT 1;
