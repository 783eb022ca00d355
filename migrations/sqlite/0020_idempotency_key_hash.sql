-- Idempotency keys are found by a 64-bit hash of their scope and key (see
-- `store::idempotency::key_hash`) instead of by the scope and the key
-- themselves: an index of small integers costs SQLite about half as much
-- for each key recorded as one of two long strings did. The table is
-- rebuilt without its primary key; keys recorded before keep a NULL hash
-- here, and the server fills it in before it serves anything (SQLite has
-- no SHA-256 of its own).
CREATE TABLE idempotency_keys_hashed (
    key_hash BIGINT,
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status BIGINT,
    response TEXT
);
INSERT INTO idempotency_keys_hashed (scope, idem_key, request_hash, created_at, status, response)
    SELECT scope, idem_key, request_hash, created_at, status, response FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_hashed RENAME TO idempotency_keys;
CREATE UNIQUE INDEX idempotency_keys_key_hash ON idempotency_keys (key_hash);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
