-- Nothing on SQLite: Postgres's migration 0008 changes the stored refresh
-- function of 0007. Kept so both backends share one migration numbering.
SELECT 1;
