-- Stable identities (sqlite). Keep in step with ../postgres/0008_identities.sql.

-- Home volumes: new accounts get 'u-' || id (the store sets it), a name no other account can
-- ever get. Older rows keep the name they have, because their files live there. Where two
-- accounts share one name (IServ renamed bob to robert and a new "bob" arrived), the older
-- account keeps the volume and the newer one gets a home of its own from now on.
UPDATE users SET home_name = username WHERE home_name = '';
UPDATE users SET home_name = 'u-' || id
    WHERE EXISTS (
        SELECT 1 FROM users o
        WHERE o.home_name = users.home_name
          AND (o.created_at < users.created_at OR (o.created_at = users.created_at AND o.id < users.id))
    );
CREATE UNIQUE INDEX users_home_name ON users (home_name);

-- An administrator allowed the next IServ sign-in with this username to take the local
-- account over (its password goes). Holds that administrator's username; NULL: not allowed.
ALTER TABLE users ADD COLUMN link_allowed_by TEXT;

-- Deleted accounts whose home volume is kept until purge_at: listed on the admin page, can be
-- restored until then. The row keeps what a restore needs to give the account back as it was.
CREATE TABLE deleted_users (
    id               TEXT NOT NULL PRIMARY KEY,
    username         TEXT NOT NULL,
    display_name     TEXT    NOT NULL,
    email            TEXT,
    role             TEXT    NOT NULL CHECK (role IN ('admin', 'teacher', 'student')),
    password_hash    TEXT,
    external_subject TEXT,
    language         TEXT,
    home_name        TEXT    NOT NULL UNIQUE,
    -- JSON array of group names.
    group_names      TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    deleted_at       INTEGER NOT NULL,
    -- Username of the administrator who deleted the account.
    deleted_by       TEXT    NOT NULL,
    -- From then on the background job removes the home volume and this row.
    purge_at         INTEGER NOT NULL
) STRICT;

CREATE INDEX deleted_users_purge_at ON deleted_users (purge_at);
