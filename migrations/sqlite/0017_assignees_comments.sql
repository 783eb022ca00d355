-- Who works on an item: a member of its workspace, or nobody. The index
-- serves "assigned to me" (newest first).
ALTER TABLE work_items ADD COLUMN assignee_id BIGINT REFERENCES users(id);
CREATE INDEX work_items_by_assignee ON work_items (workspace_id, assignee_id, id);

-- Comments on work items: plain text, in the order written. edited_at is
-- set when its author (or an owner) changes it; a removed comment is
-- deleted, and the audit log keeps what it said.
CREATE TABLE item_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    item_id BIGINT NOT NULL REFERENCES work_items(id) ON DELETE CASCADE,
    author_id BIGINT REFERENCES users(id),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    edited_at TEXT
);
CREATE INDEX item_comments_by_item ON item_comments (item_id, id);
