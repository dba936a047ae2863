-- Sign-ins on their way through IServ, so that the callback may reach any portal replica
-- (sqlite; keep in step with the other backend's 0021). The keys are the sha256 hex of the
-- random `state` in IServ's redirect and of the browser's binding cookie; nonce and PKCE
-- verifier are useless without the authorization code IServ sends to that browser. Times are
-- unix milliseconds. Taken out on first use; the leader purges expired ones.
CREATE TABLE pending_sign_ins (
    id            TEXT    NOT NULL PRIMARY KEY,
    binding       TEXT    NOT NULL,
    nonce         TEXT    NOT NULL,
    pkce_verifier TEXT    NOT NULL,
    return_to     TEXT    NOT NULL,
    -- Who started it (the client's address): a flood from one source pushes out its own.
    source        TEXT    NOT NULL,
    created_ms    INTEGER  NOT NULL,
    expires_ms    INTEGER  NOT NULL
) STRICT;
CREATE INDEX pending_sign_ins_source ON pending_sign_ins (source, created_ms);
CREATE INDEX pending_sign_ins_created ON pending_sign_ins (created_ms);
