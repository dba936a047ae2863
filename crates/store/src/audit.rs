//! The audit log: who started, stopped, removed or changed what, and who signed in. Bounded by
//! age ([`Store::prune_audit`]), listed newest first with filters.

use std::fmt;
use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now};

/// Longest text kept per field; longer values are cut, never refused (logging must not fail).
const MAX_FIELD_CHARS: usize = 512;
/// Most entries one page may ask for.
pub const MAX_AUDIT_PAGE: i64 = 500;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    DesktopStarted,
    /// By its user, an admin, the idle culler or the maximum age (the detail says which).
    DesktopStopped,
    DesktopFailed,
    DesktopRemoved,
    TypeCreated,
    TypeChanged,
    TypeDeleted,
    SignIn,
    SignInFailed,
    SignOut,
    UserCreated,
    UserChanged,
    UserDeleted,
    SettingsChanged,
    /// Any other admin action (stop all, clean up, image pull, ending sessions).
    AdminAction,
    /// Class material handed out or withdrawn, deletions in shared folders.
    FilesChanged,
    /// A teacher acted on a class: stopped or restarted a student's desktop, ended the
    /// lesson, set or cleared a message to the group.
    ClassAction,
    /// Helping with consent: asked, offered, accepted, declined, ended (the detail says which,
    /// with the helper and the times).
    Help,
    /// A teacher or administrator started or stopped watching a student's screen (the detail
    /// says which, and for how long).
    ScreenWatched,
}

impl AuditKind {
    /// Every kind, in the order the admin page offers them as filters.
    pub const ALL: [AuditKind; 19] = [
        AuditKind::DesktopStarted,
        AuditKind::DesktopStopped,
        AuditKind::DesktopFailed,
        AuditKind::DesktopRemoved,
        AuditKind::TypeCreated,
        AuditKind::TypeChanged,
        AuditKind::TypeDeleted,
        AuditKind::SignIn,
        AuditKind::SignInFailed,
        AuditKind::SignOut,
        AuditKind::UserCreated,
        AuditKind::UserChanged,
        AuditKind::UserDeleted,
        AuditKind::SettingsChanged,
        AuditKind::AdminAction,
        AuditKind::FilesChanged,
        AuditKind::ClassAction,
        AuditKind::Help,
        AuditKind::ScreenWatched,
    ];

    /// The name stored in the database and used in filters.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::DesktopStarted => "desktop_started",
            AuditKind::DesktopStopped => "desktop_stopped",
            AuditKind::DesktopFailed => "desktop_failed",
            AuditKind::DesktopRemoved => "desktop_removed",
            AuditKind::TypeCreated => "type_created",
            AuditKind::TypeChanged => "type_changed",
            AuditKind::TypeDeleted => "type_deleted",
            AuditKind::SignIn => "sign_in",
            AuditKind::SignInFailed => "sign_in_failed",
            AuditKind::SignOut => "sign_out",
            AuditKind::UserCreated => "user_created",
            AuditKind::UserChanged => "user_changed",
            AuditKind::UserDeleted => "user_deleted",
            AuditKind::SettingsChanged => "settings_changed",
            AuditKind::AdminAction => "admin_action",
            AuditKind::FilesChanged => "files_changed",
            AuditKind::ClassAction => "class_action",
            AuditKind::Help => "help",
            AuditKind::ScreenWatched => "screen_watched",
        }
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditKind {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| StoreError::Invalid(format!("kind: unknown audit event kind {s:?}")))
    }
}

/// One event to record. Build with [`AuditEvent::new`] and the setters.
///
/// ```
/// # use portal_store::{AuditEvent, AuditKind};
/// let e = AuditEvent::new(AuditKind::SignIn, "IServ").actor("alice").user("alice");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub kind: AuditKind,
    /// Who did it; `None` = the portal itself.
    pub actor: Option<String>,
    /// Whose account or desktop it concerns.
    pub username: Option<String>,
    /// A desktop id, type key or setting name.
    pub target: Option<String>,
    /// Free text in English (reasons, changed fields); never secrets.
    pub detail: String,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, detail: impl Into<String>) -> Self {
        AuditEvent {
            kind,
            actor: None,
            username: None,
            target: None,
            detail: detail.into(),
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn user(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
}

/// A recorded event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub kind: String,
    pub actor: Option<String>,
    pub username: Option<String>,
    pub target: Option<String>,
    pub detail: String,
}

/// Which entries to list: newest first, `limit` from `offset`.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub kind: Option<AuditKind>,
    /// Entries whose actor or concerned user is this username.
    pub user: Option<String>,
    pub offset: i64,
    /// 1 to [`MAX_AUDIT_PAGE`].
    pub limit: i64,
}

fn cut(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(MAX_FIELD_CHARS)
        .collect()
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        kind: row.try_get("kind")?,
        actor: row.try_get("actor")?,
        username: row.try_get("username")?,
        target: row.try_get("target")?,
        detail: row.try_get("detail")?,
    })
}

impl Store {
    /// Records `event` now. Fields longer than 512 characters are cut.
    pub async fn audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.audit_at(event, now()).await
    }

    /// Records `event` at `at` (unix seconds); for imports and tests of retention.
    pub async fn audit_at(&self, event: &AuditEvent, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, kind, actor, username, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(at)
        .bind(event.kind.as_str())
        .bind(event.actor.as_deref().map(cut))
        .bind(event.username.as_deref().map(cut))
        .bind(event.target.as_deref().map(cut))
        .bind(cut(&event.detail))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A page of entries, newest first (by time, then by insertion), and whether more follow.
    pub async fn audit_page(&self, filter: &AuditFilter) -> Result<(Vec<AuditEntry>, bool), StoreError> {
        if !(1..=MAX_AUDIT_PAGE).contains(&filter.limit) {
            return Err(StoreError::Invalid(format!(
                "limit: between 1 and {MAX_AUDIT_PAGE} entries per page"
            )));
        }
        if filter.offset < 0 {
            return Err(StoreError::Invalid("offset: must not be negative".to_owned()));
        }
        let kind = filter.kind.map(AuditKind::as_str);
        let user = filter.user.as_deref().map(str::trim).filter(|u| !u.is_empty());
        // NULL parameters switch a filter off; one statement serves every combination.
        let rows = sqlx::query(
            "SELECT id, at, kind, actor, username, target, detail FROM audit_log \
             WHERE (CAST($1 AS TEXT) IS NULL OR kind = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR username = $2 OR actor = $2) \
             ORDER BY at DESC, id DESC LIMIT $3 OFFSET $4",
        )
        .bind(kind)
        .bind(user)
        .bind(filter.limit + 1)
        .bind(filter.offset)
        .fetch_all(&self.pool)
        .await?;
        let mut entries = rows.iter().map(entry_from_row).collect::<Result<Vec<_>, _>>()?;
        let more = entries.len() as i64 > filter.limit;
        entries.truncate(usize::try_from(filter.limit).unwrap_or(0));
        Ok((entries, more))
    }

    /// Deletes entries older than `before` (unix seconds); returns how many.
    pub async fn prune_audit(&self, before: i64) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }

    /// The latest `sign_in` per username, from the log.
    pub async fn last_sign_ins(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT username, MAX(at) AS last FROM audit_log WHERE kind = 'sign_in' AND username IS NOT NULL \
             GROUP BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("username")?, r.try_get("last")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in AuditKind::ALL {
            assert_eq!(k.as_str().parse::<AuditKind>().ok(), Some(k));
            assert_eq!(serde_json::to_value(k).ok(), Some(serde_json::json!(k.as_str())));
        }
        assert!("nope".parse::<AuditKind>().is_err());
    }

    #[test]
    fn long_and_control_text_is_cut() {
        assert_eq!(cut(&"x".repeat(600)).len(), MAX_FIELD_CHARS);
        assert_eq!(cut("a\u{1b}[31mb\nc"), "a[31mb\nc");
    }
}
