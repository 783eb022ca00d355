-- audit_events without AUTOINCREMENT: the sqlite_sequence row it updates on
-- every insert cost a page write per appended event. Rows are never deleted
-- (triggers refuse it), so plain rowids only grow, as before. Existing ids
-- are kept; the hash chain does not include them.

CREATE TABLE audit_events_new (
    id INTEGER PRIMARY KEY,
    chain_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    time TEXT NOT NULL,
    workspace_id INTEGER,
    actor_user_id INTEGER,
    actor_token_id INTEGER,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (chain_id, seq)
);
INSERT INTO audit_events_new (id, chain_id, seq, time, workspace_id, actor_user_id, actor_token_id, actor, action, target, details, prev_hash, hash)
    SELECT id, chain_id, seq, time, workspace_id, actor_user_id, actor_token_id, actor, action, target, details, prev_hash, hash
    FROM audit_events;
-- Dropping a table drops its triggers before anything else, so the
-- append-only triggers do not fire here.
DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
CREATE TRIGGER audit_events_head AFTER INSERT ON audit_events
BEGIN
    UPDATE audit_chains SET head_seq = NEW.seq, head_hash = NEW.hash WHERE chain_id = NEW.chain_id;
END;
