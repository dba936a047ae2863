//! Several portals on one PostgreSQL: which of them is the leader that runs the background
//! work (culling, reconcile, the Docker event follower, sealing hand-ins, purging accounts),
//! and how each applies what the others changed (desktop routes and states, ended sessions).
//!
//! The leader holds a session-level advisory lock on a connection of its own; the others try
//! to take it every [`RETRY`]. When the leader dies its connection drops and the lock frees,
//! so another portal leads within seconds. On SQLite there is one portal, always the leader.

use std::sync::Arc;
use std::time::Duration;

use portal_store::{Backend, DESKTOPS_CHANNEL, HELP_CHANNEL, Notice, SESSIONS_CHANNEL, Store};
use tokio::sync::watch;

use super::events::PeerChange;
use super::help::Help;
use super::lifecycle::Lifecycle;
use crate::telemetry::metrics::Metrics;

/// How often a portal that is not the leader tries to become it, and how often the leader
/// checks that its lock's connection still stands.
pub const RETRY: Duration = Duration::from_secs(2);

/// Whether this portal is the leader now; cheap to clone.
#[derive(Clone)]
pub struct Leadership(Arc<watch::Sender<bool>>);

impl Default for Leadership {
    fn default() -> Self {
        Leadership(Arc::new(watch::channel(false).0))
    }
}

impl Leadership {
    pub fn is_leader(&self) -> bool {
        *self.0.borrow()
    }

    /// Follows changes of leadership.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }

    fn set(&self, leader: bool, metrics: &Metrics) {
        metrics.set_leader(leader);
        self.0.send_if_modified(|now| std::mem::replace(now, leader) != leader);
    }

    /// Takes and keeps the lead whenever no other portal has it; forever.
    pub async fn elect(self, store: Store, metrics: Arc<Metrics>) {
        if store.backend() != Backend::Postgres {
            self.set(true, &metrics);
            return std::future::pending().await;
        }
        loop {
            match store.try_lead().await {
                Ok(Some(mut lock)) => {
                    tracing::info!("this portal now leads the background work");
                    self.set(true, &metrics);
                    loop {
                        tokio::time::sleep(RETRY).await;
                        if let Err(e) = lock.check().await {
                            tracing::warn!(error = %e, "lost the connection holding the lead; stepping down");
                            break;
                        }
                    }
                    drop(lock);
                    self.set(false, &metrics);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "trying to lead the background work failed"),
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// Told when another portal changed sessions or users (the sessions layer lies above this
/// one, so it is handed in): it closes at once what ended sessions hold open here.
pub type SessionsChanged = Box<dyn Fn() + Send + Sync>;

/// Applies the other portals' notifications forever: desktop changes to the routes and the
/// live pages, session changes to the session cache and, at once rather than at the next
/// sweep, to the relays open here, help grants to this portal's helpers. After a break it
/// resyncs from the store.
pub async fn follow_peers(store: Store, desktops: Arc<Lifecycle>, help: Arc<Help>, sessions_changed: SessionsChanged) {
    loop {
        let mut notifications = match store.listen().await {
            Ok(Some(n)) => n,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "listening to the other portals failed; trying again");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            match notifications.next().await {
                Ok(Notice::Message { channel, payload }) if channel == DESKTOPS_CHANNEL => {
                    match serde_json::from_str::<PeerChange>(&payload) {
                        Ok(change) => desktops.apply_peer_change(&change).await,
                        Err(e) => tracing::warn!(error = %e, "a desktop notification could not be read"),
                    }
                }
                Ok(Notice::Message { channel, .. }) if channel == SESSIONS_CHANNEL => {
                    store.forget_cached_sessions();
                    sessions_changed();
                }
                Ok(Notice::Message { channel, payload }) if channel == HELP_CHANNEL => help.apply_peer_notice(&payload),
                Ok(Notice::Message { .. }) => {}
                Ok(Notice::Reconnected) => resync(&store, &desktops, &help, &sessions_changed).await,
                Err(e) => {
                    tracing::warn!(error = %e, "the other portals' notifications broke off; reconnecting");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
        // A new listener: what was sent meanwhile is lost.
        resync(&store, &desktops, &help, &sessions_changed).await;
    }
}

/// Reads afresh what the missed notifications would have said.
async fn resync(store: &Store, desktops: &Lifecycle, help: &Help, sessions_changed: &SessionsChanged) {
    tracing::info!("reading afresh what the other portals' missed notifications would have said");
    store.forget_cached_sessions();
    // Grants of others whose end may have been missed: no longer honoured here.
    help.forget_peer_grants();
    sessions_changed();
    if let Err(e) = desktops.resync_routes().await {
        tracing::warn!(error = %e, "reading the desktops' routes afresh failed");
    }
}
