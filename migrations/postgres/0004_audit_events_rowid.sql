-- Nothing to do on PostgreSQL: this migration removes SQLite's AUTOINCREMENT
-- from audit_events (identity columns have no such cost).
SELECT 1;
