//! Live desktop states: the lifecycle publishes every state change on one broadcast channel
//! (another tab, an admin's stop, a crash, the idle culler); the web layer streams each user's
//! share of it.
//!
//! Each change is published as the store now has it, so a late or lagging subscriber never
//! sees a state the store does not; a subscriber that lagged gets a fresh snapshot.
//!
//! With several portals on one PostgreSQL each change is also sent to the others (a
//! [`PeerChange`] on `NOTIFY`); they apply it through `Lifecycle::apply_peer_change`.

use portal_store::{DESKTOPS_CHANNEL, Desktop, DesktopState, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::stop_reason::StopReason;

/// Changes kept for slow subscribers before they lag (and get a snapshot instead).
const CAPACITY: usize = 1024;
/// One desktop's new state.
#[derive(Clone, Debug)]
pub struct DesktopChange {
    /// The owner: the stream filters on it.
    pub user_id: String,
    pub desktop_id: String,
    pub type_key: String,
    /// `None`: the desktop (its container) was removed.
    pub state: Option<DesktopState>,
    pub reason: Option<StopReason>,
    /// Last input, else start, else stop (unix seconds).
    pub last_used: Option<i64>,
}

impl DesktopChange {
    pub fn of(d: &Desktop) -> Self {
        DesktopChange {
            user_id: d.user_id.clone(),
            desktop_id: d.id.clone(),
            type_key: d.type_key.clone(),
            state: Some(d.state),
            reason: StopReason::of(d),
            last_used: last_used(d),
        }
    }
}

/// When the user last used the desktop: last input, else its start, else its stop.
pub fn last_used(d: &Desktop) -> Option<i64> {
    d.last_activity_at.or(d.started_at).or(d.stopped_at)
}

/// A desktop change as sent to the other portals: which desktop, and whether it is gone (a
/// row that no longer exists cannot be read back). Everything else they read from the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerChange {
    /// The sending portal's [`Changes::origin`]: a portal skips its own notifications.
    pub from: String,
    pub id: String,
    pub user_id: String,
    pub type_key: String,
    pub removed: bool,
}

/// The broadcast of state changes; held by the lifecycle.
pub struct Changes {
    tx: broadcast::Sender<DesktopChange>,
    /// Random per process: tells this portal's notifications from the others'.
    origin: String,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            tx: broadcast::channel(CAPACITY).0,
            origin: portal_store::random_secret::<9>(),
        }
    }
}

impl Changes {
    pub fn subscribe(&self) -> broadcast::Receiver<DesktopChange> {
        self.tx.subscribe()
    }

    /// Whether a peer's change came from this very portal.
    pub fn is_own(&self, change: &PeerChange) -> bool {
        change.from == self.origin
    }

    /// Publishes desktop `id` as the store now has it, here and to the other portals. A failed
    /// read only costs a live update (pages resync on their next snapshot), never the state
    /// change itself.
    pub async fn publish(&self, store: &Store, id: &str) {
        match store.desktop(id).await {
            Ok(Some(d)) => {
                self.send_local(DesktopChange::of(&d));
                self.tell_peers(store, &d, false).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(desktop = %id, error = %e, "reading a desktop to publish its state failed"),
        }
    }

    /// Publishes that `d` was removed, here and to the other portals.
    pub async fn removed(&self, store: &Store, d: &Desktop) {
        self.send_local(DesktopChange {
            state: None,
            ..DesktopChange::of(d)
        });
        self.tell_peers(store, d, true).await;
    }

    /// Sends a change to this portal's subscribers only (one a peer told us about).
    pub fn send_local(&self, change: DesktopChange) {
        let _ = self.tx.send(change);
    }

    async fn tell_peers(&self, store: &Store, d: &Desktop, removed: bool) {
        let change = PeerChange {
            from: self.origin.clone(),
            id: d.id.clone(),
            user_id: d.user_id.clone(),
            type_key: d.type_key.clone(),
            removed,
        };
        match serde_json::to_string(&change) {
            Ok(payload) => store.notify(DESKTOPS_CHANNEL, &payload).await,
            Err(e) => tracing::warn!(desktop = %d.id, error = %e, "encoding a change for the other portals failed"),
        }
    }
}
