-- What this installation decided about single plugins, by plugin name, so
-- that every server on the database applies it and it outlives restarts:
-- the tier a plugin runs in when it was chosen for that plugin (by the
-- server after a crash, or by an admin) rather than by configuration.
-- Other decisions about a plugin (approved capabilities, quarantine) are
-- columns of the same row.
CREATE TABLE plugin_policies (
    name TEXT PRIMARY KEY,
    -- 'in_process', 'worker', or NULL for no decision
    isolation TEXT,
    -- who decided: 'system' or a user's email
    decided_by TEXT NOT NULL,
    -- why, in words
    reason TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
