-- Users, their groups and server-side sessions (SQLite).
-- Keep in step with ../postgres/0001_users_sessions.sql: same tables, columns and meaning.
-- Timestamps are unix seconds (INTEGER): the sqlx Any driver has no date/time types.
-- STRICT makes SQLite reject values of the wrong type, as PostgreSQL would.

CREATE TABLE users (
    id               TEXT    NOT NULL PRIMARY KEY,
    username         TEXT    NOT NULL UNIQUE,
    display_name     TEXT    NOT NULL,
    email            TEXT,
    role             TEXT    NOT NULL CHECK (role IN ('admin', 'teacher', 'student')),
    -- NULL for users who only sign in through OpenID Connect.
    password_hash    TEXT,
    -- The identity provider's `sub`; NULL for local-only users.
    external_subject TEXT    UNIQUE,
    language         TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE user_groups (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_id, group_name)
) STRICT;

-- Desktop-type permissions and class views look users up by group.
CREATE INDEX user_groups_group_name ON user_groups (group_name);

CREATE TABLE sessions (
    -- sha256 hex of the cookie token: a leaked database does not yield usable cookies.
    id              TEXT    NOT NULL PRIMARY KEY,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token      TEXT    NOT NULL,
    -- Desktop id the root /websockify falls back to; no foreign key yet (no desktops table).
    current_desktop TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user_id ON sessions (user_id);
