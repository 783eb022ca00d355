-- The latest verification of each audit chain: when, by whom, and its
-- report (JSON), so that the audit log can say when its chain was last
-- checked and what was found.
CREATE TABLE audit_verifications (
    chain_id INTEGER PRIMARY KEY,
    verified_at TEXT NOT NULL,
    verified_by TEXT NOT NULL,
    intact INTEGER NOT NULL,
    report TEXT NOT NULL
);
