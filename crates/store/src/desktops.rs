//! Desktops: one container per user and desktop type, its password, state and whereabouts.

use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::is_foreign_key_violation;
use crate::{Store, StoreError, now};

/// Longest desktop id: a 64-character username, `-` and a 32-character key fit easily.
const MAX_ID_CHARS: usize = 128;
/// Longer state reasons (Docker error messages can be long) are cut, not refused: refusing
/// would lose the state change.
const MAX_REASON_CHARS: usize = 1000;

/// Where a desktop is in its life cycle. Stored as its snake_case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesktopState {
    /// Claimed by a portal replica that is creating or starting the container.
    Starting,
    /// The container runs; `host` and `port` say where.
    Running,
    /// Being stopped.
    Stopping,
    /// Not running (new, stopped by the user, idle or too old).
    Stopped,
    /// The last start or run failed; `state_reason` says why. Can be started again.
    Failed,
}

impl DesktopState {
    pub const ALL: [DesktopState; 5] = [
        DesktopState::Starting,
        DesktopState::Running,
        DesktopState::Stopping,
        DesktopState::Stopped,
        DesktopState::Failed,
    ];

    /// The name used in the database and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DesktopState::Starting => "starting",
            DesktopState::Running => "running",
            DesktopState::Stopping => "stopping",
            DesktopState::Stopped => "stopped",
            DesktopState::Failed => "failed",
        }
    }

    /// Starting, Running or Stopping: someone is working on it or it uses resources.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            DesktopState::Starting | DesktopState::Running | DesktopState::Stopping
        )
    }
}

impl fmt::Display for DesktopState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DesktopState {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DesktopState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| StoreError::Invalid(format!("unknown desktop state {s:?}")))
    }
}

/// One user's desktop of one type.
///
/// `Debug` shows the password as `[REDACTED]` (via [`SecretString`]); there is no `Serialize`.
#[derive(Clone, Debug)]
pub struct Desktop {
    /// `{username}-{type_key}` as it was when the desktop was created (a later rename of the
    /// user does not change it).
    pub id: String,
    pub user_id: String,
    /// The owner's current username.
    pub username: String,
    pub type_key: String,
    /// Random per desktop (32 URL-safe characters); the container's `VNC_PW`.
    pub vnc_password: SecretString,
    pub state: DesktopState,
    /// Why it stopped or failed: the portal's stable code (`user`, `idle:30`, `oom:…`); rows
    /// from before the codes hold an English sentence. The portal reads both.
    pub state_reason: Option<String>,
    /// Kept after a stop, so the container can be restarted or removed.
    pub container_id: Option<String>,
    /// Where the proxy reaches the desktop; set while running.
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Unix seconds, like all timestamps here.
    pub created_at: i64,
    /// When it last became Running.
    pub started_at: Option<i64>,
    /// When it last became Stopped or Failed; cleared when it runs again.
    pub stopped_at: Option<i64>,
    /// Last keyboard or mouse input.
    pub last_activity_at: Option<i64>,
}

/// 24 random bytes, URL-safe base64 without padding: 32 characters.
fn random_password() -> String {
    crate::random_secret::<24>()
}

fn check_id(id: &str) -> Result<(), StoreError> {
    let mut chars = id.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if first_ok && rest_ok && id.len() <= MAX_ID_CHARS {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "invalid desktop id {id:?}: use 1 to {MAX_ID_CHARS} characters a-z, 0-9, '.', '_' or '-', starting with \
             a letter or digit"
        )))
    }
}

fn cut_reason(reason: Option<&str>) -> Option<String> {
    reason
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(|r| match r.char_indices().nth(MAX_REASON_CHARS) {
            Some((end, _)) => r[..end].to_owned(),
            None => r.to_owned(),
        })
}

/// `SELECT` of every column [`desktop_from_row`] reads, followed by the given clause.
macro_rules! select_desktops {
    ($tail:literal) => {
        concat!(
            "SELECT d.id, d.user_id, u.username, d.type_key, d.vnc_password, d.state, d.state_reason, ",
            "d.container_id, d.host, d.port, d.created_at, d.started_at, d.stopped_at, d.last_activity_at ",
            "FROM desktops d JOIN users u ON u.id = d.user_id ",
            $tail
        )
    };
}

fn desktop_from_row(row: &AnyRow) -> Result<Desktop, StoreError> {
    let state: String = row.try_get("state")?;
    let state = state
        .parse::<DesktopState>()
        .map_err(|_| StoreError::corrupt(format!("unknown desktop state {state:?} in desktops table")))?;
    let port: Option<i64> = row.try_get("port")?;
    let port = port
        .map(|p| u16::try_from(p).map_err(|_| StoreError::corrupt(format!("desktop port {p} out of range"))))
        .transpose()?;
    let password: String = row.try_get("vnc_password")?;
    Ok(Desktop {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        type_key: row.try_get("type_key")?,
        vnc_password: SecretString::from(password),
        state,
        state_reason: row.try_get("state_reason")?,
        container_id: row.try_get("container_id")?,
        host: row.try_get("host")?,
        port,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        stopped_at: row.try_get("stopped_at")?,
        last_activity_at: row.try_get("last_activity_at")?,
    })
}

impl Store {
    /// Returns the existing desktop of (user, type) or creates it in state Stopped with the
    /// given id and a fresh random password (32 URL-safe characters).
    ///
    /// An existing desktop keeps its id, which may differ from `id` (the user was renamed since).
    /// Race-safe: concurrent calls, also from several replicas, yield one row and the same
    /// password. `NotFound` if the user or the type does not exist, `Conflict` if `id` belongs
    /// to another user's or type's desktop, `Invalid` for an id outside
    /// `^[a-z0-9][a-z0-9._-]{0,127}$`. Does not check `enabled` or permissions.
    pub async fn ensure_desktop(&self, id: &str, user_id: &str, type_key: &str) -> Result<Desktop, StoreError> {
        check_id(id)?;
        // Second round only when the row vanished between INSERT and SELECT (a concurrent
        // delete); a persistent miss means the id is taken by another (user, type).
        for _ in 0..2 {
            let now = now();
            let inserted = sqlx::query(
                "INSERT INTO desktops (id, user_id, type_key, vnc_password, state, state_reason, state_changed_at, \
                 container_id, host, port, created_at, started_at, stopped_at, last_activity_at) \
                 VALUES ($1, $2, $3, $4, 'stopped', NULL, $5, NULL, NULL, NULL, $5, NULL, NULL, NULL) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(user_id)
            .bind(type_key)
            .bind(random_password())
            .bind(now)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => {}
                Err(err) if is_foreign_key_violation(&err) => return Err(StoreError::NotFound),
                Err(err) => return Err(err.into()),
            }
            let row = sqlx::query(select_desktops!("WHERE d.user_id = $1 AND d.type_key = $2"))
                .bind(user_id)
                .bind(type_key)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = row {
                return desktop_from_row(&row);
            }
        }
        Err(StoreError::Conflict(format!(
            "desktop id {id:?} is already used by another desktop"
        )))
    }

    pub async fn desktop(&self, id: &str) -> Result<Option<Desktop>, StoreError> {
        let row = sqlx::query(select_desktops!("WHERE d.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(desktop_from_row).transpose()
    }

    /// A user's desktops, in the order of their types (`sort_order`, then key).
    pub async fn desktops_of_user(&self, user_id: &str) -> Result<Vec<Desktop>, StoreError> {
        let rows = sqlx::query(select_desktops!(
            "JOIN desktop_types t ON t.key = d.type_key WHERE d.user_id = $1 ORDER BY t.sort_order, d.type_key"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(desktop_from_row).collect()
    }

    /// Every desktop, by id (bytewise).
    pub async fn all_desktops(&self) -> Result<Vec<Desktop>, StoreError> {
        let rows = sqlx::query(select_desktops!("ORDER BY d.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(desktop_from_row).collect()
    }

    /// Starting or Stopping desktops whose state has not changed since before `before` (unix
    /// seconds), by id: starts and stops a crashed or restarted replica left behind. Reset them
    /// with [`Store::mark_state`] after checking the container.
    pub async fn stale_transitions(&self, before: i64) -> Result<Vec<Desktop>, StoreError> {
        let rows = sqlx::query(select_desktops!(
            "WHERE d.state IN ('starting', 'stopping') AND d.state_changed_at < $1 ORDER BY d.id"
        ))
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(desktop_from_row).collect()
    }

    /// Atomically moves a Stopped or Failed desktop to Starting (clearing the reason) and
    /// returns `true`; `false` when it is already Starting, Running or Stopping (someone else is
    /// on it). `NotFound` if there is no such desktop.
    pub async fn claim_start(&self, id: &str) -> Result<bool, StoreError> {
        let claimed = sqlx::query(
            "UPDATE desktops SET state = 'starting', state_reason = NULL, state_changed_at = $2 \
             WHERE id = $1 AND state IN ('stopped', 'failed')",
        )
        .bind(id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        if claimed.rows_affected() > 0 {
            return Ok(true);
        }
        let exists = sqlx::query("SELECT id FROM desktops WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match exists {
            Some(_) => Ok(false),
            None => Err(StoreError::NotFound),
        }
    }

    /// Records a started container: state Running, where it is reachable, `started_at` and
    /// `last_activity_at` now; clears the reason and `stopped_at`. Whatever the previous state.
    /// `NotFound` if there is no such desktop.
    pub async fn mark_running(&self, id: &str, container_id: &str, host: &str, port: u16) -> Result<(), StoreError> {
        if container_id.trim().is_empty() {
            return Err(StoreError::Invalid("container id must not be empty".to_owned()));
        }
        if host.trim().is_empty() {
            return Err(StoreError::Invalid("host must not be empty".to_owned()));
        }
        if port == 0 {
            return Err(StoreError::Invalid("port must be between 1 and 65535".to_owned()));
        }
        let updated = sqlx::query(
            "UPDATE desktops SET state = 'running', state_reason = NULL, state_changed_at = $5, \
             container_id = $2, host = $3, port = $4, started_at = $5, stopped_at = NULL, last_activity_at = $5 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(container_id.trim())
        .bind(host.trim())
        .bind(i64::from(port))
        .bind(now())
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets the state and its reason (`None` clears it; longer than 1000 characters is cut).
    ///
    /// Stopped and Failed also clear `host` and `port` and set `stopped_at` to now, unless the
    /// desktop was already Stopped or Failed. `container_id` is kept. Other states change only
    /// state and reason (use [`Store::mark_running`] for a started container).
    /// `NotFound` if there is no such desktop.
    pub async fn mark_state(&self, id: &str, state: DesktopState, reason: Option<&str>) -> Result<(), StoreError> {
        let reason = cut_reason(reason);
        let query = match state {
            DesktopState::Stopped | DesktopState::Failed => sqlx::query(
                "UPDATE desktops SET \
                 stopped_at = CASE WHEN state IN ('stopped', 'failed') THEN stopped_at ELSE $4 END, \
                 state_changed_at = CASE WHEN state = $2 THEN state_changed_at ELSE $4 END, \
                 state = $2, state_reason = $3, host = NULL, port = NULL \
                 WHERE id = $1",
            ),
            DesktopState::Starting | DesktopState::Running | DesktopState::Stopping => sqlx::query(
                "UPDATE desktops SET \
                 state_changed_at = CASE WHEN state = $2 THEN state_changed_at ELSE $4 END, \
                 state = $2, state_reason = $3 \
                 WHERE id = $1",
            ),
        };
        let updated = query
            .bind(id)
            .bind(state.as_str())
            .bind(reason)
            .bind(now())
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets `last_activity_at` (last user input) to `at`, unix seconds; also backwards, so a
    /// caller can backdate it. `NotFound` if there is no such desktop.
    pub async fn touch_activity(&self, id: &str, at: i64) -> Result<(), StoreError> {
        let updated = sqlx::query("UPDATE desktops SET last_activity_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Removes a desktop (whatever its state; the container is the caller's business) and
    /// clears it as sessions' current desktop. Succeeds if there is no such desktop.
    pub async fn delete_desktop(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE sessions SET current_desktop = NULL WHERE current_desktop = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM desktops WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.sessions_changed().await;
        Ok(())
    }

    /// How many desktops are in one of `states`, of one user or (`None`) in total; for limits
    /// such as "at most N Starting or Running".
    pub async fn count_desktops_in_states(
        &self,
        user_id: Option<&str>,
        states: &[DesktopState],
    ) -> Result<i64, StoreError> {
        if states.is_empty() {
            return Ok(0);
        }
        // Counts per state, summed here: the SQL stays literal whatever the list of states.
        let rows = match user_id {
            Some(user_id) => {
                sqlx::query("SELECT state, COUNT(*) AS n FROM desktops WHERE user_id = $1 GROUP BY state")
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT state, COUNT(*) AS n FROM desktops GROUP BY state")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let mut total = 0;
        for row in &rows {
            let state: String = row.try_get("state")?;
            if states.iter().any(|s| s.as_str() == state) {
                let n: i64 = row.try_get("n")?;
                total += n;
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names() {
        for state in DesktopState::ALL {
            assert_eq!(state.as_str().parse::<DesktopState>().ok(), Some(state));
            assert_eq!(state.to_string(), state.as_str());
        }
        assert!("Running".parse::<DesktopState>().is_err());
        assert!(DesktopState::Stopping.is_active());
        assert!(!DesktopState::Failed.is_active());
    }

    #[test]
    fn passwords() {
        let pw = random_password();
        assert_eq!(pw.len(), 32);
        assert!(pw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(pw, random_password());
    }

    #[test]
    fn ids_and_reasons() {
        assert!(check_id("anna.schmidt-ubuntu").is_ok());
        for bad in ["", "-a", "A-b", "a/b", "a b", &"a".repeat(129)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        assert_eq!(cut_reason(Some("  ")), None);
        assert_eq!(cut_reason(Some(" idle ")).as_deref(), Some("idle"));
        assert_eq!(
            cut_reason(Some(&"ä".repeat(1200))).map(|r| r.chars().count()),
            Some(1000)
        );
    }
}
