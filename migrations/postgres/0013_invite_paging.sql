-- A workspace's invites are listed newest first, a page at a time: this
-- index lets the database walk straight to a page (and count them) instead
-- of reading every invite of the installation.
CREATE INDEX invites_by_workspace ON invites(workspace_id, id);
