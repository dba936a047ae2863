-- Desktop types that teachers enabled for their groups (SQLite).
-- Keep in step with ../postgres/0005_type_grants.sql: same tables, columns and meaning.
-- Separate from desktop_types.allowed_groups, which admins own: a teacher's grant never
-- rewrites an admin's setting, and removing the type removes its grants.

CREATE TABLE type_grants (
    type_key   TEXT    NOT NULL REFERENCES desktop_types (key) ON DELETE CASCADE,
    group_name TEXT    NOT NULL,
    -- Who enabled it; NULL once that account is deleted (the grant stays).
    granted_by TEXT    REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (type_key, group_name)
) STRICT;

CREATE INDEX type_grants_group_name ON type_grants (group_name);
