-- The audit log, portal-wide settings (branding) and uploaded images (icons, logo) (PostgreSQL).
-- Keep in step with ../sqlite/0004_audit_settings.sql: same tables, columns and meaning.

CREATE TABLE audit_log (
    id       BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Unix seconds.
    at       BIGINT  NOT NULL,
    -- desktop_started, desktop_stopped, sign_in, … (portal_store::AuditKind).
    kind     TEXT    NOT NULL,
    -- Who did it: a username, or NULL for the portal itself (idle culler, crash, reconcile).
    actor    TEXT,
    -- Whose account or desktop it concerns.
    username TEXT,
    -- What it acted on: a desktop id, a type key, a setting.
    target   TEXT,
    detail   TEXT    NOT NULL
);

-- Newest first, optionally by kind or user; pruning by age.
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_kind ON audit_log (kind, at);
CREATE INDEX audit_log_username ON audit_log (username, at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);

CREATE TABLE settings (
    key        TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE images (
    -- "icon:{type key}" or "logo".
    key          TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    content_type TEXT    NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    -- Base64: the sqlx Any driver handles text the same way on both backends.
    data         TEXT    NOT NULL,
    updated_at   BIGINT  NOT NULL
);
