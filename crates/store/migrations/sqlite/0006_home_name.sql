-- The name of each user's home volume, fixed when the account is created (sqlite).
-- Keep in step with ../postgres/0006_home_name.sql. Usernames follow IServ and can be renamed
-- there; the home volume must not follow, or a renamed user would lose their files.
ALTER TABLE users ADD COLUMN home_name TEXT NOT NULL DEFAULT '';
UPDATE users SET home_name = username;
