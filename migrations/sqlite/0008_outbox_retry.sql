-- Outbox retries back off: a failed delivery is tried again no sooner than
-- this time (30 s after the first failure, doubling each time), so a relay
-- outage of hours, not minutes, is ridden out before a message is given up
-- (ten tries over about four hours).
ALTER TABLE outbox ADD COLUMN next_attempt_at TEXT;
