-- A session's absolute end, beside its idle expiry; 0 (sessions from before)
-- has ended.
ALTER TABLE sessions ADD COLUMN ends_ms BIGINT NOT NULL DEFAULT 0;
