-- Idempotency keys are found by a 64-bit hash of their scope and key (see
-- `store::idempotency::key_hash`: the first 8 bytes of the SHA-256 of the
-- scope, a newline and the key, read as a signed big-endian integer)
-- instead of by the scope and the key themselves; the keys recorded before
-- get theirs here.
ALTER TABLE idempotency_keys ADD COLUMN key_hash BIGINT;
UPDATE idempotency_keys SET key_hash = ('x' || encode(substring(
    sha256(convert_to(scope || E'\n' || idem_key, 'UTF8')) FROM 1 FOR 8), 'hex'))::bit(64)::bigint;
ALTER TABLE idempotency_keys ALTER COLUMN key_hash SET NOT NULL;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
CREATE UNIQUE INDEX idempotency_keys_key_hash ON idempotency_keys (key_hash);
