-- The desktop types whose allowed_users named a deleted account (sqlite). Keep in step with
-- ../postgres/0015_deleted_user_types.sql. Deleting takes the name out of those lists (a new
-- account of the same name must not inherit them); a restore puts it back. JSON array of keys.
ALTER TABLE deleted_users ADD COLUMN allowed_types TEXT NOT NULL DEFAULT '[]';
