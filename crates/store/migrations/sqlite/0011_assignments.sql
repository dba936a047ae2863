-- Hand-ins (Abgaben): a teacher's assignment for one group, with a due time (sqlite).
-- Keep in step with ../postgres/0011_assignments.sql. The handed-in files live on disk
-- (files root, `handins/<id>/<student's home>`); this table says who may write there and until when.
CREATE TABLE assignments (
    -- 16 random URL-safe characters; part of paths on disk.
    id          TEXT    NOT NULL PRIMARY KEY,
    owner_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name  TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    -- Unix seconds; hand-ins after it are refused unless allow_late, then marked late.
    due_at      INTEGER NOT NULL,
    allow_late  INTEGER NOT NULL CHECK (allow_late IN (0, 1)),
    created_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX assignments_group_name ON assignments (group_name);
CREATE INDEX assignments_owner_id ON assignments (owner_id);
