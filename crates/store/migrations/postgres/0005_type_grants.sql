-- Desktop types that teachers enabled for their groups (PostgreSQL).
-- Keep in step with ../sqlite/0005_type_grants.sql: same tables, columns and meaning.
-- Separate from desktop_types.allowed_groups, which admins own: a teacher's grant never
-- rewrites an admin's setting, and removing the type removes its grants.

CREATE TABLE type_grants (
    type_key   TEXT    COLLATE "C" NOT NULL REFERENCES desktop_types (key) ON DELETE CASCADE,
    group_name TEXT    COLLATE "C" NOT NULL,
    -- Who enabled it; NULL once that account is deleted (the grant stays).
    granted_by TEXT    REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (type_key, group_name)
);

CREATE INDEX type_grants_group_name ON type_grants (group_name);
