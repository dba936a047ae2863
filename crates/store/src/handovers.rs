//! Handovers to other origins that every portal replica must honour: one-time tickets from the
//! view page to a desktop's own host, the cookies those hosts give, and PDF preview tickets.
//!
//! The browser holds a random value; the database only its sha256 (as for sessions), so a
//! leaked database yields no usable ticket or cookie. A ticket is taken out with one
//! `DELETE … RETURNING`, so of two replicas redeeming it at once exactly one gets it.
//! Bounds keep runaway use small: per portal session and in total, the oldest go first.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{Store, StoreError, hex, random_secret};

/// What one portal session may hold at once of tickets and of desktop cookies (a tab per
/// desktop and a few reloads): beyond it that session's own oldest goes, so no one pushes out
/// other people's.
pub const MAX_HANDOVERS_PER_SESSION: usize = 64;
/// The same, as the databases count.
const PER_SESSION: i64 = MAX_HANDOVERS_PER_SESSION as i64;
/// Tickets in flight at most, over all sessions.
const MAX_DESKTOP_TICKETS: i64 = 20_000;
/// Desktop cookies at most, over all sessions.
const MAX_DESKTOP_COOKIES: i64 = 100_000;
/// Preview tickets at most (each a few hundred bytes).
const MAX_PREVIEW_TICKETS: i64 = 10_000;
/// "No limit" for `LIMIT … OFFSET`, which both databases accept only with a LIMIT.
const ALL: i64 = i64::MAX;

/// The database key of a ticket or cookie value.
pub fn handover_id(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Whom a desktop ticket or cookie belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesktopHandover {
    /// The portal session's id (the hash of its token).
    pub session_id: String,
    pub desktop_id: String,
}

/// A desktop ticket as taken out of the database (it is gone there, whatever the caller
/// decides).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakenTicket {
    pub handover: DesktopHandover,
    /// Its lifetime ended before it was taken.
    pub expired: bool,
}

/// What a preview ticket lets the preview origin serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPreview {
    pub user_id: String,
    /// The space's name in URLs (`home`, `class`, …).
    pub space: String,
    /// The path in that space, the group or assignment first where the space has one.
    pub path: String,
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// A fresh one-time ticket for the browser of portal session `session_id` to enter
    /// `desktop_id`, valid for `ttl`. `NotFound` if the session is gone.
    pub async fn issue_desktop_ticket(
        &self,
        session_id: &str,
        desktop_id: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let ticket = random_secret::<32>();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM desktop_tickets WHERE session_id = $1 AND expires_ms <= $2")
            .bind(session_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        make_room(&mut tx, &DESKTOP_TICKETS, Some(session_id)).await?;
        let insert = sqlx::query(
            "INSERT INTO desktop_tickets (id, session_id, desktop_id, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(handover_id(&ticket))
        .bind(session_id)
        .bind(desktop_id)
        .bind(now)
        .bind(now.saturating_add(ms(ttl)));
        insert_owned(&mut tx, insert).await?;
        tx.commit().await?;
        Ok(ticket)
    }

    /// Takes `ticket` out, on whichever replica issued it: single use, whatever the caller
    /// then decides. `None` if it is unknown or already used.
    pub async fn take_desktop_ticket(&self, ticket: &str) -> Result<Option<TakenTicket>, StoreError> {
        let row = sqlx::query("DELETE FROM desktop_tickets WHERE id = $1 RETURNING session_id, desktop_id, expires_ms")
            .bind(handover_id(ticket))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_ms: i64 = row.try_get("expires_ms")?;
        Ok(Some(TakenTicket {
            handover: DesktopHandover {
                session_id: row.try_get("session_id")?,
                desktop_id: row.try_get("desktop_id")?,
            },
            expired: expires_ms <= now_ms(),
        }))
    }

    /// A new desktop-host cookie for `session_id` on `desktop_id`; its value. `NotFound` if
    /// the session is gone.
    pub async fn bind_desktop_cookie(&self, session_id: &str, desktop_id: &str) -> Result<String, StoreError> {
        let cookie = random_secret::<32>();
        let mut tx = self.begin_write().await?;
        make_room(&mut tx, &DESKTOP_COOKIES, Some(session_id)).await?;
        let insert =
            sqlx::query("INSERT INTO desktop_cookies (id, session_id, desktop_id, created_ms) VALUES ($1, $2, $3, $4)")
                .bind(handover_id(&cookie))
                .bind(session_id)
                .bind(desktop_id)
                .bind(now_ms());
        insert_owned(&mut tx, insert).await?;
        tx.commit().await?;
        Ok(cookie)
    }

    /// Whom the desktop-host cookie `cookie` belongs to, made on any replica; `None` if it is
    /// unknown or was ended.
    pub async fn desktop_cookie(&self, cookie: &str) -> Result<Option<DesktopHandover>, StoreError> {
        let row = sqlx::query("SELECT session_id, desktop_id FROM desktop_cookies WHERE id = $1")
            .bind(handover_id(cookie))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(DesktopHandover {
                session_id: row.try_get("session_id")?,
                desktop_id: row.try_get("desktop_id")?,
            })
        })
        .transpose()
    }

    /// The ids ([`handover_id`]) of `session_id`'s desktop cookies that still stand.
    pub async fn desktop_cookie_ids(&self, session_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM desktop_cookies WHERE session_id = $1")
            .bind(session_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?)
    }

    /// Ends `session_id`'s desktop cookies, for `desktop_id` only when given; how many.
    pub async fn end_desktop_cookies(&self, session_id: &str, desktop_id: Option<&str>) -> Result<u64, StoreError> {
        let done = match desktop_id {
            Some(desktop_id) => {
                sqlx::query("DELETE FROM desktop_cookies WHERE session_id = $1 AND desktop_id = $2")
                    .bind(session_id)
                    .bind(desktop_id)
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM desktop_cookies WHERE session_id = $1")
                    .bind(session_id)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected())
    }

    /// A new preview ticket for `path` in `space` as seen by `user_id`, valid for `ttl`.
    pub async fn issue_preview_ticket(
        &self,
        user_id: &str,
        space: &str,
        path: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let ticket = random_secret::<24>();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        make_room(&mut tx, &PREVIEW_TICKETS, None).await?;
        let insert = sqlx::query(
            "INSERT INTO preview_tickets (id, user_id, space, path, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(handover_id(&ticket))
        .bind(user_id)
        .bind(space)
        .bind(path)
        .bind(now)
        .bind(now.saturating_add(ms(ttl)));
        insert_owned(&mut tx, insert).await?;
        tx.commit().await?;
        Ok(ticket)
    }

    /// The preview ticket `ticket` while it is valid (reusable until then: a PDF viewer asks
    /// for the same file several times).
    pub async fn preview_ticket(&self, ticket: &str) -> Result<Option<StoredPreview>, StoreError> {
        let row = sqlx::query("SELECT user_id, space, path FROM preview_tickets WHERE id = $1 AND expires_ms > $2")
            .bind(handover_id(ticket))
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(StoredPreview {
                user_id: row.try_get("user_id")?,
                space: row.try_get("space")?,
                path: row.try_get("path")?,
            })
        })
        .transpose()
    }

    /// Deletes expired desktop and preview tickets and sign-ins (lookups ignore them anyway;
    /// this keeps the tables small). Desktop cookies go with their sessions. How many went.
    pub async fn purge_expired_tickets(&self) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut purged = 0;
        for sql in [
            "DELETE FROM desktop_tickets WHERE expires_ms <= $1",
            "DELETE FROM preview_tickets WHERE expires_ms <= $1",
            "DELETE FROM pending_sign_ins WHERE expires_ms <= $1",
        ] {
            purged += sqlx::query(sql).bind(now).execute(&self.pool).await?.rows_affected();
        }
        Ok(purged)
    }
}

/// A table with a bound on its rows, and how to trim it.
pub(crate) struct Bounded {
    /// Deletes all but the newest `$3` rows of owner `$1` (a session, or a sign-in's source;
    /// `$2`: no limit); empty for a table whose rows have no owner.
    pub trim_session: &'static str,
    /// What one owner may hold at once.
    pub per_owner: i64,
    pub count: &'static str,
    /// Deletes the `$1` oldest rows.
    pub trim: &'static str,
    pub max: i64,
}

const DESKTOP_TICKETS: Bounded = Bounded {
    trim_session: "DELETE FROM desktop_tickets WHERE id IN (SELECT id FROM desktop_tickets WHERE session_id = $1 \
                   ORDER BY created_ms DESC LIMIT $2 OFFSET $3)",
    per_owner: PER_SESSION,
    count: "SELECT COUNT(*) FROM desktop_tickets",
    trim: "DELETE FROM desktop_tickets WHERE id IN (SELECT id FROM desktop_tickets ORDER BY created_ms LIMIT $1)",
    max: MAX_DESKTOP_TICKETS,
};
const DESKTOP_COOKIES: Bounded = Bounded {
    trim_session: "DELETE FROM desktop_cookies WHERE id IN (SELECT id FROM desktop_cookies WHERE session_id = $1 \
                   ORDER BY created_ms DESC LIMIT $2 OFFSET $3)",
    per_owner: PER_SESSION,
    count: "SELECT COUNT(*) FROM desktop_cookies",
    trim: "DELETE FROM desktop_cookies WHERE id IN (SELECT id FROM desktop_cookies ORDER BY created_ms LIMIT $1)",
    max: MAX_DESKTOP_COOKIES,
};
const PREVIEW_TICKETS: Bounded = Bounded {
    trim_session: "",
    per_owner: 0,
    count: "SELECT COUNT(*) FROM preview_tickets",
    trim: "DELETE FROM preview_tickets WHERE id IN (SELECT id FROM preview_tickets ORDER BY created_ms LIMIT $1)",
    max: MAX_PREVIEW_TICKETS,
};

/// Makes room for one more row in `table`, for `owner` if given: deletes that owner's
/// oldest while it holds its bound, and the table's oldest while it holds its maximum.
pub(crate) async fn make_room(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    table: &Bounded,
    owner: Option<&str>,
) -> Result<(), StoreError> {
    if let Some(owner) = owner {
        sqlx::query(table.trim_session)
            .bind(owner)
            .bind(ALL)
            .bind(table.per_owner - 1)
            .execute(&mut **tx)
            .await?;
    }
    let count: i64 = sqlx::query_scalar(table.count).fetch_one(&mut **tx).await?;
    if count >= table.max {
        sqlx::query(table.trim)
            .bind(count - table.max + 1)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Runs `insert` of a row naming a session or user; `NotFound` when that one is gone.
async fn insert_owned(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    insert: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
) -> Result<(), StoreError> {
    match insert.execute(&mut **tx).await {
        Err(e) if crate::error::is_foreign_key_violation(&e) => Err(StoreError::NotFound),
        other => Ok(other.map(drop)?),
    }
}
