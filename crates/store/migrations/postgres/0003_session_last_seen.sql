-- Idle expiry of sessions (PostgreSQL). Keep in step with ../sqlite/0003_session_last_seen.sql.
-- last_seen_at is refreshed at most about once a minute per session (see sessions.rs), so a
-- request does not cost a write each time.
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at = created_at;
