//! What several portals sharing one PostgreSQL need from it: exactly one leader among them
//! for background work (a session-level advisory lock) and notifications between them
//! (LISTEN/NOTIFY). On SQLite there is one portal: it is always the leader and has nobody to
//! notify, so these calls are no-ops there.

use secrecy::ExposeSecret as _;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions};

use crate::{Backend, Store, StoreError};

/// Sessions or users changed: every replica forgets its cached sessions.
pub const SESSIONS_CHANNEL: &str = "ird_sessions";
/// A help grant was given or ended (see the portal's `help_peers`).
pub const HELP_CHANNEL: &str = "ird_help";
/// A desktop's state or route changed; the payload says which (see the portal's `replicas`).
pub const DESKTOPS_CHANNEL: &str = "ird_desktops";
/// The `application_name` of each portal's listening connection, so an operator (or a test)
/// finds it in `pg_stat_activity`.
pub const LISTENER_NAME: &str = "iserv-rd listener";
/// The advisory lock key of the leader ("IRD LEAD" in ASCII); any constant no other
/// application on the same database uses.
const LEADER_KEY: i64 = 0x4952_4420_4c45_4144;

/// The leader's lock, held by a connection of its own for as long as this value lives. When
/// the process dies its connection drops and PostgreSQL frees the lock for another replica.
pub struct LeaderLock {
    conn: PgConnection,
}

impl LeaderLock {
    /// Checks that the connection (and so the lock) is still there.
    pub async fn check(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.ping().await?)
    }
}

/// What a [`Notifications`] stream delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Message {
        channel: String,
        payload: String,
    },
    /// The listening connection broke and was opened again: notifications in between are
    /// lost, so the caller reads what it keeps from the database afresh.
    Reconnected,
}

/// Notifications of the other replicas on [`SESSIONS_CHANNEL`], [`DESKTOPS_CHANNEL`] and
/// [`HELP_CHANNEL`].
pub struct Notifications {
    listener: PgListener,
}

impl Notifications {
    /// The next notice; an error means the database cannot be reached now (call again later,
    /// it reconnects).
    pub async fn next(&mut self) -> Result<Notice, StoreError> {
        Ok(match self.listener.try_recv().await? {
            Some(n) => Notice::Message {
                channel: n.channel().to_owned(),
                payload: n.payload().to_owned(),
            },
            None => Notice::Reconnected,
        })
    }
}

impl Store {
    /// Takes the leader's lock if no other replica holds it: `None` when one does. On SQLite
    /// this is never called (one process is always leader); it answers `Invalid` there.
    pub async fn try_lead(&self) -> Result<Option<LeaderLock>, StoreError> {
        if self.backend != Backend::Postgres {
            return Err(StoreError::Invalid(
                "only PostgreSQL has several replicas to lead".to_owned(),
            ));
        }
        let mut conn = PgConnection::connect(self.url.expose_secret()).await?;
        let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_KEY)
            .fetch_one(&mut conn)
            .await?;
        if taken {
            Ok(Some(LeaderLock { conn }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Listens for the other replicas' notifications; `None` on SQLite.
    pub async fn listen(&self) -> Result<Option<Notifications>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let options: PgConnectOptions = self.url.expose_secret().parse()?;
        // A pool of one, as `PgListener::connect` makes, only to name the connection.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with(options.application_name(LISTENER_NAME))
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.ignore_pool_close_event(true);
        listener
            .listen_all([SESSIONS_CHANNEL, DESKTOPS_CHANNEL, HELP_CHANNEL])
            .await?;
        Ok(Some(Notifications { listener }))
    }

    /// Tells every replica listening on `channel` (this one too). Nothing on SQLite. A
    /// failure is logged: the others then catch up at their next resync or cache expiry.
    pub async fn notify(&self, channel: &str, payload: &str) {
        if self.backend != Backend::Postgres {
            return;
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(channel, error = %e, "notifying the other portals failed");
        }
    }

    /// Forgets this process's cached sessions (another replica changed sessions or users).
    pub fn forget_cached_sessions(&self) {
        self.sessions.clear();
    }

    /// After a write to sessions, users or their groups: forget the cached sessions here and
    /// tell the other replicas to do the same.
    pub(crate) async fn sessions_changed(&self) {
        self.sessions.clear();
        self.notify(SESSIONS_CHANNEL, "").await;
    }
}
