//! Live desktop states: the lifecycle publishes every state change on one broadcast channel
//! (another tab, an admin's stop, a crash, the idle culler); the web layer streams each user's
//! share of it.
//!
//! Each change is published as the store now has it, so a late or lagging subscriber never
//! sees a state the store does not; a subscriber that lagged gets a fresh snapshot.

use portal_store::{Desktop, DesktopState, Store};
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

/// The broadcast of state changes; held by the lifecycle.
pub struct Changes {
    tx: broadcast::Sender<DesktopChange>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Changes {
    pub fn subscribe(&self) -> broadcast::Receiver<DesktopChange> {
        self.tx.subscribe()
    }

    /// Publishes desktop `id` as the store now has it. A failed read only costs a live
    /// update (pages resync on their next snapshot), never the state change itself.
    pub async fn publish(&self, store: &Store, id: &str) {
        match store.desktop(id).await {
            Ok(Some(d)) => {
                let _ = self.tx.send(DesktopChange::of(&d));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(desktop = %id, error = %e, "reading a desktop to publish its state failed"),
        }
    }

    /// Publishes that `d` was removed.
    pub fn removed(&self, d: &Desktop) {
        let _ = self.tx.send(DesktopChange {
            state: None,
            ..DesktopChange::of(d)
        });
    }
}
