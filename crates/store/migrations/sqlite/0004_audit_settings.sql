-- The audit log, portal-wide settings (branding) and uploaded images (icons, logo) (SQLite).
-- Keep in step with ../postgres/0004_audit_settings.sql: same tables, columns and meaning.

CREATE TABLE audit_log (
    id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    -- Unix seconds.
    at       INTEGER NOT NULL,
    -- desktop_started, desktop_stopped, sign_in, … (portal_store::AuditKind).
    kind     TEXT    NOT NULL,
    -- Who did it: a username, or NULL for the portal itself (idle culler, crash, reconcile).
    actor    TEXT,
    -- Whose account or desktop it concerns.
    username TEXT,
    -- What it acted on: a desktop id, a type key, a setting.
    target   TEXT,
    detail   TEXT    NOT NULL
) STRICT;

-- Newest first, optionally by kind or user; pruning by age.
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_kind ON audit_log (kind, at);
CREATE INDEX audit_log_username ON audit_log (username, at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);

CREATE TABLE settings (
    key        TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE images (
    -- "icon:{type key}" or "logo".
    key          TEXT    NOT NULL PRIMARY KEY,
    content_type TEXT    NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    -- Base64: the sqlx Any driver handles text the same way on both backends.
    data         TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
