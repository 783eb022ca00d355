-- Lists of work items are read newest first, one kind (and maybe one
-- status) at a time, a page at a time: these indexes let the database walk
-- straight to a page instead of sorting every item of the workspace.
CREATE INDEX work_items_newest ON work_items(workspace_id, kind, id);
CREATE INDEX work_items_newest_by_status ON work_items(workspace_id, kind, status, id);
CREATE INDEX work_items_newest_any_kind ON work_items(workspace_id, id);
