-- The time zone a person chose to read times in on pages (an IANA name,
-- such as Europe/Berlin); NULL: their browser's.
ALTER TABLE users ADD COLUMN time_zone TEXT;
