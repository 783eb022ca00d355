-- Idempotency keys: a create retried with the same `Idempotency-Key` (per
-- API token) answers with the first response instead of running again. The
-- row is written in the same transaction as the request's first write, so a
-- request that committed always left its key behind; the response (sealed,
-- since it may hold a new token) is added once it is known.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status BIGINT,
    response TEXT,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
