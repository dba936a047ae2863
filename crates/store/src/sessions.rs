//! Server-side sessions: the cookie carries a random token, the database only its sha256.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::error::is_foreign_key_violation;
use crate::users::user_from_row;
use crate::{NewSession, Session, Store, StoreError, User, hex, now};

/// 32 random bytes, URL-safe base64 without padding (43 characters; fits a cookie as is).
fn random_token() -> String {
    crate::random_secret::<32>()
}

/// Seconds between two refreshes of a session's last-seen time: a minute, or half the idle
/// timeout when that is shorter (so short timeouts still work), but at least a second.
fn touch_interval(idle: Option<Duration>) -> i64 {
    let half_idle = idle
        .filter(|d| !d.is_zero())
        .map_or(60, |d| i64::try_from(d.as_secs() / 2).unwrap_or(60));
    half_idle.clamp(1, 60)
}

/// How long a session read from the database answers later lookups from memory.
const CACHE_TTL: Duration = Duration::from_secs(1);
/// More cached sessions than this empties the cache before the next one is added.
const CACHE_MAX: usize = 10_000;

/// Live sessions read in the last [`CACHE_TTL`], so that a page and the many proxied requests
/// of its desktop cost one database round trip a second instead of two each (the dashboard's
/// profile showed half of each request waiting on SQLite). Every write in this process to
/// sessions, users or their groups empties it, so sign-out, ending sessions, role and group
/// changes apply at once here; another replica sharing PostgreSQL sees them within the TTL.
#[derive(Debug, Default)]
pub(crate) struct SessionCache(Mutex<HashMap<String, Cached>>);

#[derive(Debug, Clone)]
struct Cached {
    session: Session,
    user: User,
    last_seen: i64,
    fetched: Instant,
}

impl SessionCache {
    fn get(&self, id: &str) -> Option<Cached> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(id).filter(|c| c.fetched.elapsed() < CACHE_TTL).cloned()
    }

    fn put(&self, id: String, cached: Cached) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(id, cached);
    }

    /// Forgets every cached session; called after each write that could change one.
    pub(crate) fn clear(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// The session id stored for `token`: whoever reads the database cannot rebuild the cookie.
fn session_id(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Starts a session for `user_id` valid for `ttl` (whole seconds). `NotFound` if there is no
    /// such user.
    pub async fn create_session(&self, user_id: &str, ttl: Duration) -> Result<NewSession, StoreError> {
        let token = random_token();
        let created_at = now();
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let session = Session {
            id: session_id(&token),
            user_id: user_id.to_owned(),
            csrf_token: random_token(),
            current_desktop: None,
            created_at,
            expires_at: created_at.saturating_add(ttl_secs),
        };
        let inserted = sqlx::query(
            "INSERT INTO sessions (id, user_id, csrf_token, current_desktop, created_at, \
             expires_at, last_seen_at) VALUES ($1, $2, $3, NULL, $4, $5, $4)",
        )
        .bind(&session.id)
        .bind(&session.user_id)
        .bind(&session.csrf_token)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(NewSession { token, session }),
            Err(err) if is_foreign_key_violation(&err) => Err(StoreError::NotFound),
            Err(err) => Err(err.into()),
        }
    }

    /// The live session for a cookie token and its user; `None` when unknown or expired.
    /// Only the absolute expiry applies; see [`Store::live_session`] for idle expiry.
    pub async fn session_by_token(&self, token: &str) -> Result<Option<(Session, User)>, StoreError> {
        self.live_session(token, None).await
    }

    /// The live session for a cookie token and its user, and a sign of life for it.
    ///
    /// `None` when the token is unknown, the session is past its absolute expiry, or — with
    /// `idle` — nobody used it for that long. Using it refreshes its last-seen time, but at
    /// most once per [`touch_interval`] so that a page full of requests costs one write, not
    /// one each; the idle expiry is therefore up to that interval early.
    pub async fn live_session(
        &self,
        token: &str,
        idle: Option<Duration>,
    ) -> Result<Option<(Session, User)>, StoreError> {
        self.load_session(session_id(token), idle, true).await
    }

    /// [`Store::live_session`] by the session's id (the hash of its token), without counting
    /// as a use: for checks the portal makes on its own (is a relay's session still alive?),
    /// which must not keep an unused session from expiring.
    pub async fn peek_session(&self, id: &str, idle: Option<Duration>) -> Result<Option<(Session, User)>, StoreError> {
        self.load_session(id.to_owned(), idle, false).await
    }

    async fn load_session(
        &self,
        id: String,
        idle: Option<Duration>,
        touch: bool,
    ) -> Result<Option<(Session, User)>, StoreError> {
        let now = now();
        let idle_secs = idle
            .filter(|d| !d.is_zero())
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if let Some(c) = self.sessions.get(&id) {
            let fresh = c.session.expires_at > now
                && idle_secs.is_none_or(|secs| c.last_seen.saturating_add(secs) > now)
                && (!touch || now.saturating_sub(c.last_seen) < touch_interval(idle));
            if fresh {
                return Ok(Some((c.session, c.user)));
            }
        }
        let row = sqlx::query(
            "SELECT s.id AS session_id, s.csrf_token, s.current_desktop, \
             s.created_at AS session_created_at, s.expires_at, s.last_seen_at, \
             u.id, u.username, u.display_name, u.email, u.role, u.external_subject, u.language, \
             u.home_name, u.link_allowed_by, \
             CAST(CASE WHEN u.password_hash IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_password, \
             u.created_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.expires_at > $2",
        )
        .bind(&id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut last_seen: i64 = row.try_get("last_seen_at")?;
        if let Some(idle_secs) = idle_secs
            && last_seen.saturating_add(idle_secs) <= now
        {
            return Ok(None);
        }
        let user_id: String = row.try_get("id")?;
        let session = Session {
            id: row.try_get("session_id")?,
            user_id: user_id.clone(),
            csrf_token: row.try_get("csrf_token")?,
            current_desktop: row.try_get("current_desktop")?,
            created_at: row.try_get("session_created_at")?,
            expires_at: row.try_get("expires_at")?,
        };
        if touch && now.saturating_sub(last_seen) >= touch_interval(idle) {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&session.id)
                .execute(&self.pool)
                .await?;
            last_seen = now;
        }
        let groups = self.groups_of(&user_id).await?;
        let user = user_from_row(&row, groups)?;
        let cached = Cached {
            session: session.clone(),
            user: user.clone(),
            last_seen,
            fetched: Instant::now(),
        };
        self.sessions.put(id, cached);
        Ok(Some((session, user)))
    }

    /// Remembers which desktop the session last opened (for the root `/websockify`).
    /// `NotFound` if the session does not exist.
    pub async fn set_current_desktop(&self, session_id: &str, desktop_id: Option<&str>) -> Result<(), StoreError> {
        let updated = sqlx::query("UPDATE sessions SET current_desktop = $1 WHERE id = $2")
            .bind(desktop_id)
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        self.sessions_changed().await;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Ends the session for a cookie token (sign-out). Succeeds if it did not exist.
    pub async fn delete_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(session_id(token))
            .execute(&self.pool)
            .await?;
        self.sessions_changed().await;
        Ok(())
    }

    /// Ends every session of a user (password change, account disabled). Returns how many.
    pub async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        self.sessions_changed().await;
        Ok(deleted.rows_affected())
    }

    /// Removes expired sessions; lookups already ignore them, this only reclaims space.
    pub async fn delete_expired_sessions(&self) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }

    /// Removes sessions nobody used for `idle` (besides the expired ones, see
    /// [`Store::delete_expired_sessions`]); lookups already refuse them.
    pub async fn delete_idle_sessions(&self, idle: Duration) -> Result<u64, StoreError> {
        let idle_secs = i64::try_from(idle.as_secs()).unwrap_or(i64::MAX);
        let deleted = sqlx::query("DELETE FROM sessions WHERE last_seen_at <= $1")
            .bind(now().saturating_sub(idle_secs))
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache answers without the database, and a write through the store empties it: a
    /// session deleted behind the store's back still answers (for at most the TTL), one deleted
    /// through it does not.
    #[tokio::test]
    #[allow(clippy::expect_used)]
    async fn lookups_are_cached_and_writes_empty_the_cache() {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        let password = secrecy::SecretString::from("a long enough password".to_owned());
        let user = store
            .create_local_user("cache", "", crate::Role::Student, &password)
            .await
            .expect("user");
        let new = store
            .create_session(&user.id, Duration::from_secs(3600))
            .await
            .expect("session");
        let live = store.live_session(&new.token, None).await.expect("lookup");
        assert_eq!(live.map(|(s, _)| s.id), Some(new.session.id.clone()));
        sqlx::query("DELETE FROM sessions")
            .execute(&store.pool)
            .await
            .expect("raw delete");
        let cached = store.live_session(&new.token, None).await.expect("lookup");
        assert!(cached.is_some(), "answered from the cache");
        store.delete_session("another token").await.expect("delete");
        let gone = store.live_session(&new.token, None).await.expect("lookup");
        assert!(gone.is_none(), "a write through the store empties the cache");
    }

    #[test]
    fn tokens() {
        let token = random_token();
        assert_eq!(token.len(), 43);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(token, random_token());
        // sha256("abc")
        assert_eq!(
            session_id("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn touch_interval_follows_short_idle_timeouts() {
        assert_eq!(touch_interval(None), 60);
        assert_eq!(touch_interval(Some(Duration::ZERO)), 60);
        assert_eq!(touch_interval(Some(Duration::from_secs(3600))), 60);
        assert_eq!(touch_interval(Some(Duration::from_secs(10))), 5);
        assert_eq!(touch_interval(Some(Duration::from_secs(1))), 1);
    }
}
