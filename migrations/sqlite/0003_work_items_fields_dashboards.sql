-- Work items (changes, incidents, tasks), custom field definitions and
-- dashboards. Custom field values live in work_items.fields (a JSON object
-- keyed by field key), validated by the server (and by plugins for plugin
-- field types) before they are written.

CREATE TABLE work_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    fields TEXT NOT NULL DEFAULT '{}',
    created_by INTEGER REFERENCES users(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Serves listing by status and the dashboards' count-by-status (covering).
CREATE INDEX work_items_by_status ON work_items(workspace_id, kind, status);

CREATE TABLE custom_fields (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    label TEXT NOT NULL,
    applies_to TEXT NOT NULL,
    field_type TEXT NOT NULL,
    required INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    UNIQUE (workspace_id, key)
);

CREATE TABLE dashboard_widgets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    widget TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE INDEX dashboard_widgets_by_position ON dashboard_widgets(workspace_id, position);

-- Work items per status, kept by triggers in the same transaction as every
-- insert, move and delete, so dashboards read a handful of rows instead of
-- counting every item.
CREATE TABLE work_item_counts (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, kind, status)
);

CREATE TRIGGER work_items_count_insert AFTER INSERT ON work_items BEGIN
    INSERT INTO work_item_counts (workspace_id, kind, status, n)
        VALUES (NEW.workspace_id, NEW.kind, NEW.status, 1)
        ON CONFLICT (workspace_id, kind, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER work_items_count_update AFTER UPDATE OF workspace_id, kind, status ON work_items BEGIN
    UPDATE work_item_counts SET n = n - 1
        WHERE workspace_id = OLD.workspace_id AND kind = OLD.kind AND status = OLD.status;
    INSERT INTO work_item_counts (workspace_id, kind, status, n)
        VALUES (NEW.workspace_id, NEW.kind, NEW.status, 1)
        ON CONFLICT (workspace_id, kind, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER work_items_count_delete AFTER DELETE ON work_items BEGIN
    UPDATE work_item_counts SET n = n - 1
        WHERE workspace_id = OLD.workspace_id AND kind = OLD.kind AND status = OLD.status;
END;
