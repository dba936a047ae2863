-- Users, their groups and server-side sessions (PostgreSQL).
-- Keep in step with ../sqlite/0001_users_sessions.sql: same tables, columns and meaning.
-- Timestamps are unix seconds (BIGINT): the sqlx Any driver has no date/time types.
-- COLLATE "C" on names that are sorted or compared: byte order, exactly like SQLite's default
-- BINARY collation, so listings come out in the same order on both backends whatever the
-- database's locale.

CREATE TABLE users (
    id               TEXT   NOT NULL PRIMARY KEY,
    username         TEXT   COLLATE "C" NOT NULL UNIQUE,
    display_name     TEXT   NOT NULL,
    email            TEXT,
    role             TEXT   NOT NULL CHECK (role IN ('admin', 'teacher', 'student')),
    -- NULL for users who only sign in through OpenID Connect.
    password_hash    TEXT,
    -- The identity provider's `sub`; NULL for local-only users.
    external_subject TEXT   COLLATE "C" UNIQUE,
    language         TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE user_groups (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, group_name)
);

-- Desktop-type permissions and class views look users up by group.
CREATE INDEX user_groups_group_name ON user_groups (group_name);

CREATE TABLE sessions (
    -- sha256 hex of the cookie token: a leaked database does not yield usable cookies.
    id              TEXT   NOT NULL PRIMARY KEY,
    user_id         TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token      TEXT   NOT NULL,
    -- Desktop id the root /websockify falls back to; no foreign key yet (no desktops table).
    current_desktop TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);

CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user_id ON sessions (user_id);
