-- Desktop types (what the portal offers) and desktops (one per user and type) (SQLite).
-- Keep in step with ../postgres/0002_desktops.sql: same tables, columns and meaning.
-- Timestamps are unix seconds, flags 0/1, lists JSON text: the sqlx Any driver knows no other types.

CREATE TABLE desktop_types (
    -- ^[a-z0-9][a-z0-9-]{0,31}$, part of desktop ids and container names.
    key               TEXT    NOT NULL PRIMARY KEY,
    name_de           TEXT    NOT NULL,
    name_en           TEXT    NOT NULL,
    description_de    TEXT    NOT NULL,
    description_en    TEXT    NOT NULL,
    icon              TEXT    NOT NULL,
    image             TEXT    NOT NULL,
    container_port    INTEGER NOT NULL CHECK (container_port BETWEEN 1 AND 65535),
    protocol          TEXT    NOT NULL CHECK (protocol IN ('https', 'http')),
    -- JSON array of [name, value] pairs, in order.
    env               TEXT    NOT NULL,
    shm_size_bytes    INTEGER NOT NULL,
    memory_bytes      INTEGER,
    nano_cpus         INTEGER,
    enabled           INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    -- 0 = never.
    idle_timeout_secs INTEGER NOT NULL,
    max_age_secs      INTEGER NOT NULL,
    -- JSON arrays of names; both empty = every signed-in user.
    allowed_groups    TEXT    NOT NULL,
    allowed_users     TEXT    NOT NULL,
    sort_order        INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE desktops (
    -- "{username}-{type key}" when created; kept if the user is renamed later.
    id               TEXT    NOT NULL PRIMARY KEY,
    user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- No ON DELETE action (NO ACTION): deleting a type that still has desktops fails, as with
    -- RESTRICT, but SQLite reports it as a foreign key error rather than a trigger error.
    type_key         TEXT    NOT NULL REFERENCES desktop_types (key),
    -- Plain text on purpose: it is handed to the container as VNC_PW and to the proxy for Basic Auth.
    vnc_password     TEXT    NOT NULL,
    state            TEXT    NOT NULL
                     CHECK (state IN ('starting', 'running', 'stopping', 'stopped', 'failed')),
    state_reason     TEXT,
    -- When `state` last changed, to find starts and stops a crashed replica left behind.
    state_changed_at INTEGER NOT NULL,
    container_id     TEXT,
    -- Where the proxy reaches the desktop while it runs.
    host             TEXT,
    port             INTEGER CHECK (port BETWEEN 1 AND 65535),
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    stopped_at       INTEGER,
    -- Last keyboard or mouse input, for the idle timeout.
    last_activity_at INTEGER,
    UNIQUE (user_id, type_key)
) STRICT;

-- Limits and the culler count and scan by state; deleting a type checks for its desktops.
CREATE INDEX desktops_state ON desktops (state);
CREATE INDEX desktops_type_key ON desktops (type_key);

-- sessions.current_desktop keeps no foreign key: SQLite cannot add one to an existing table.
-- Store::delete_desktop clears it instead.
