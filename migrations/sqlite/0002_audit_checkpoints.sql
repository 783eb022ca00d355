-- Signed checkpoints of audit chain heads, and append-only audit events.

CREATE TABLE audit_checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_chain ON audit_checkpoints(chain_id, seq);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;

-- Each appended event becomes its chain's recorded head, inside the database,
-- so an append costs no extra round trip.
CREATE TRIGGER audit_events_head AFTER INSERT ON audit_events
BEGIN
    UPDATE audit_chains SET head_seq = NEW.seq, head_hash = NEW.hash WHERE chain_id = NEW.chain_id;
END;
