//! Persistent state of the portal (users, groups, sessions, desktop types, desktops) in SQLite or
//! PostgreSQL.
//!
//! One code path serves both databases through sqlx's `Any` driver: every query is written in the
//! SQL subset both understand (`$1` placeholders, integers for timestamps and flags, no
//! backend-specific types), and each backend has its own migrations folder because DDL differs.
//! The URL picks the backend: `sqlite:…` (the default deployment) or `postgres://…` (several
//! portal replicas sharing one database).

mod assignments;
mod audit;
mod class_messages;
mod deleted_users;
mod desktop_types;
mod desktops;
mod error;
mod grants;
mod groups;
mod handovers;
mod model;
mod password;
mod replicas;
mod secret;
mod sessions;
mod settings;
mod sign_ins;
mod user_admin;
mod users;

use std::str::FromStr;
use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use assignments::{Assignment, MAX_TITLE_CHARS, NewAssignment};
pub use audit::{AuditEntry, AuditEvent, AuditFilter, AuditKind, MAX_AUDIT_PAGE};
pub use class_messages::{ClassMessage, MAX_MESSAGE_CHARS};
pub use deleted_users::DeletedUser;
pub use desktop_types::{DEFAULT_CONTAINER_PORT, DEFAULT_LANG, DEFAULT_SHM_SIZE_BYTES, DesktopType, Seeded};
pub use desktops::{Desktop, DesktopState};
pub use error::StoreError;
pub use grants::TypeGrant;
pub use groups::{MAX_GROUP_CHARS, clean_group_name, clean_group_names};
pub use handovers::{DesktopHandover, MAX_HANDOVERS_PER_SESSION, StoredPreview, TakenTicket, handover_id};
pub use model::{ExternalUser, NewSession, Role, Session, User};
pub use replicas::{
    DESKTOPS_CHANNEL, HELP_CHANNEL, LISTENER_NAME, LeaderLock, Notice, Notifications, SESSIONS_CHANNEL,
};
pub use secret::random_secret;
pub use settings::{IMAGE_TYPES, StoredImage};
pub use sign_ins::{MAX_SIGN_INS_PER_SOURCE, PendingSignIn, TakenSignIn};
pub use users::Linked;

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone (it wraps a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Recently read sessions; shared by the clones of one store.
    sessions: std::sync::Arc<sessions::SessionCache>,
    /// The URL it was opened with: the leader's lock and the listener need connections of
    /// their own, outside the pool.
    /// Secret since it may carry the password (and `Store` is `Debug`).
    url: secrecy::SecretString,
}

static DRIVERS: Once = Once::new();

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Opens the database named by `url`, creating an SQLite file if it is missing, and applies
    /// pending migrations.
    ///
    /// Accepted: `sqlite:path`, `sqlite://path`, `sqlite:///abs/path`, `sqlite::memory:` and
    /// `postgres://` / `postgresql://` URLs.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = backend_of(url)?;
        let pool = match backend {
            Backend::Sqlite => connect_sqlite(url).await?,
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url)?;
                AnyPoolOptions::new()
                    .max_connections(10)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        // sqlx takes an advisory lock on PostgreSQL, so replicas starting together migrate once;
        // on SQLite it takes none, so a file lock beside the database does (the service starting
        // while an admin runs the CLI on the same file: the second failed with "table … already
        // exists").
        let lock = match backend {
            Backend::Sqlite => lock_sqlite_migrations(url).await?,
            Backend::Postgres => None,
        };
        migrator.run(&pool).await?;
        drop(lock);
        Ok(Store {
            pool,
            backend,
            sessions: Default::default(),
            url: secrecy::SecretString::from(url),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool.execute("SELECT 1").await?;
        Ok(())
    }

    /// Closes all connections; further calls fail. For orderly shutdown and tests.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and then writes fails with
    /// SQLITE_BUSY, without waiting, when another connection wrote in between.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite") => Ok(Backend::Sqlite),
        Some("postgres" | "postgresql") => Ok(Backend::Postgres),
        _ => Err(StoreError::Invalid(
            "unsupported database URL: use sqlite:PATH or postgres://…".to_owned(),
        )),
    }
}

async fn connect_sqlite(url: &str) -> Result<AnyPool, StoreError> {
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    // The Any driver only takes a URL, so "create if missing" has to be said there.
    let url = if in_memory || url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    };
    if !in_memory {
        create_parent_dir(&url);
    }
    let options = AnyConnectOptions::from_str(&url)?;
    let pool_options = AnyPoolOptions::new()
        // sqlx already enables foreign keys and a 5 s busy timeout for SQLite; saying so again
        // keeps the behaviour if those defaults ever change. WAL lets readers proceed while one
        // connection writes; it is persistent, so only the first connection really switches.
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                Ok(())
            })
        });
    let pool_options = if in_memory {
        // Every connection to `sqlite::memory:` opens its own empty database, and the database
        // disappears with its connection: one connection, kept forever.
        pool_options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        // SQLite writes one at a time anyway; a few connections serve concurrent readers.
        pool_options.max_connections(8)
    };
    Ok(pool_options
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?)
}

/// Creates the directory an SQLite file will live in, so a first start with the default
/// `sqlite:data/portal.db` works without preparing anything. Best effort: if it fails, opening
/// the database reports the real problem.
/// The file of a SQLite URL (`sqlite://path?…`, `sqlite:path`).
fn sqlite_file(url: &str) -> &std::path::Path {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    std::path::Path::new(path.split_once('?').map_or(path, |(path, _)| path))
}

/// An exclusive lock on `<database>.migrate-lock`, held while migrating (released when the
/// file is dropped, or when the process dies); `None` for an in-memory database.
async fn lock_sqlite_migrations(url: &str) -> Result<Option<std::fs::File>, StoreError> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(None);
    }
    let mut path = sqlite_file(url).as_os_str().to_owned();
    path.push(".migrate-lock");
    let path = std::path::PathBuf::from(path);
    let shown = path.display().to_string();
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    locked.map(Some).map_err(|e| {
        let e = std::io::Error::new(e.kind(), format!("locking {shown} while migrating the database: {e}"));
        StoreError::Database(sqlx::Error::Io(e))
    })
}

fn create_parent_dir(url: &str) {
    if let Some(parent) = sqlite_file(url).parent()
        && !parent.as_os_str().is_empty()
        && let Err(err) = std::fs::create_dir_all(parent)
    {
        tracing::debug!(%err, dir = %parent.display(), "could not create database directory");
    }
}

/// Current time in unix seconds (the schema's timestamp format).
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// New random record id: 16 bytes, hex (32 characters).
fn new_id() -> String {
    hex(&rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(backend_of("sqlite:data/portal.db").ok(), Some(Backend::Sqlite));
        assert_eq!(backend_of("sqlite::memory:").ok(), Some(Backend::Sqlite));
        assert_eq!(backend_of("postgres://u@h/db").ok(), Some(Backend::Postgres));
        assert_eq!(backend_of("postgresql://u@h/db").ok(), Some(Backend::Postgres));
        assert!(matches!(backend_of("mysql://u@h/db"), Err(StoreError::Invalid(_))));
        assert!(matches!(backend_of("portal.db"), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn hex_encoding() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(new_id().len(), 32);
    }
}
