-- The certificate inventory: what each workspace wants to be warned about
-- before it expires. `not_after` is the earliest expiry in the uploaded
-- chain (a chain stops working when any of its certificates expires).

CREATE TABLE certificates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    serial TEXT NOT NULL,
    sans TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    fingerprint_sha256 TEXT NOT NULL,
    chain_length INTEGER NOT NULL,
    pem TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at TEXT NOT NULL,
    UNIQUE (workspace_id, fingerprint_sha256)
);
CREATE INDEX certificates_by_expiry ON certificates(workspace_id, not_after);
