-- A teacher's short message to a group, shown on its students' dashboards and view pages
-- until it expires or the teacher clears it (PostgreSQL). Keep in step with
-- ../sqlite/0017_class_messages.sql. One message per group: a new one replaces the old.
CREATE TABLE class_messages (
    group_name  TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    body        TEXT    NOT NULL,
    -- Who wrote it; NULL once that account is gone (the name stays for the students).
    author_id   TEXT    REFERENCES users (id) ON DELETE SET NULL,
    author_name TEXT    NOT NULL,
    -- Unix seconds.
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
