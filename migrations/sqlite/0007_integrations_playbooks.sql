-- Integrations: a workspace's configured adapters (which adapter plugin, its
-- settings). Secret settings live in `secrets`, each value encrypted with
-- the server's secrets key; the API never returns them.
CREATE TABLE integrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    adapter TEXT NOT NULL,
    config TEXT NOT NULL,
    secrets TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_by INTEGER REFERENCES users(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- Every attempt to deliver an event through an integration, kept whether it
-- succeeded or not.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    integration_id INTEGER,
    integration TEXT NOT NULL,
    adapter TEXT NOT NULL,
    event_type TEXT NOT NULL,
    source TEXT NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT,
    error TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX deliveries_by_integration ON deliveries(workspace_id, integration_id, id);

-- Playbooks: ordered steps (JSON), and a record of every run with each
-- step's outcome.
CREATE TABLE playbooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    steps TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE playbook_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    playbook_id INTEGER,
    playbook TEXT NOT NULL,
    dry_run INTEGER NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    steps TEXT NOT NULL,
    started_by INTEGER REFERENCES users(id),
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX playbook_runs_by_playbook ON playbook_runs(workspace_id, playbook_id, id);
CREATE INDEX playbook_runs_running ON playbook_runs(started_at) WHERE status = 'running';
