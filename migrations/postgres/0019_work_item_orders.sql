-- A list sorted by title or by last change reads its pages (keyset, from
-- the item a page starts after) straight off these indexes instead of
-- sorting every item of the kind; the title index also lets a search in
-- titles read titles alone.
CREATE INDEX work_items_by_title ON work_items (workspace_id, kind, LOWER(title), id DESC);
CREATE INDEX work_items_by_updated ON work_items (workspace_id, kind, updated_at, id);
