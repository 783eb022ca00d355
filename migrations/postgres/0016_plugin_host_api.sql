-- What plugins keep and do through the host API.
--
-- Each plugin's key-value store: one per workspace (workspace_id) and one
-- for the installation (workspace_id 0, which no workspace has). version
-- counts the writes of an entry from 1, for compare-and-set; an entry
-- whose expires_at has passed is treated as absent and removed when next
-- written or pruned.
CREATE TABLE plugin_kv (
    plugin TEXT NOT NULL,
    workspace_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    version BIGINT NOT NULL,
    expires_at TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (plugin, workspace_id, key)
);
CREATE INDEX plugin_kv_expiry ON plugin_kv (expires_at) WHERE expires_at IS NOT NULL;

-- A work item a plugin created: the plugin's name (created_by stays NULL,
-- since no person created it).
ALTER TABLE work_items ADD COLUMN created_by_plugin TEXT;

-- The capabilities an operator approved for each plugin (JSON, the shape
-- of a manifest's "capabilities"), by whom and when. A plugin's first load
-- approves what it declares; a later version that asks for more stays
-- disabled until a platform admin approves the rest.
CREATE TABLE plugin_approvals (
    name TEXT PRIMARY KEY,
    capabilities TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at TEXT NOT NULL
);
