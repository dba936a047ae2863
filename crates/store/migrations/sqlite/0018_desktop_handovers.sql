-- What several portals must share to hand a browser over to a desktop's own origin and to a
-- PDF preview (SQLite). Keep in step with ../postgres/0018_desktop_handovers.sql.
-- Every key is the sha256 hex of the random value the browser holds (a ticket in a URL, a
-- cookie): whoever reads the database cannot use it. Times are unix milliseconds:
-- tickets may live for less than a second in tests, and the oldest of a session goes first.

-- One-time tickets from the portal's view page to a desktop host; taken out when redeemed.
CREATE TABLE desktop_tickets (
    id         TEXT    NOT NULL PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    desktop_id TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX desktop_tickets_session ON desktop_tickets (session_id, created_ms);
CREATE INDEX desktop_tickets_created ON desktop_tickets (created_ms);

-- A desktop host's cookie, tied to the portal session that entered it (gone with it).
CREATE TABLE desktop_cookies (
    id         TEXT    NOT NULL PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    desktop_id TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX desktop_cookies_session ON desktop_cookies (session_id, created_ms);
CREATE INDEX desktop_cookies_created ON desktop_cookies (created_ms);

-- A PDF preview URL: one file of one space as seen by one user, reusable until it expires.
CREATE TABLE preview_tickets (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The space's name in URLs (home, shared, class, …) and the path within it, with the
    -- group or assignment as first component where the space has one.
    space      TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX preview_tickets_expires ON preview_tickets (expires_ms);
