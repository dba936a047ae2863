//! Live totals of the WebSocket relays — open relays and bytes each way — for the portal's
//! metrics.
//!
//! Relaxed atomics only: a scrape may see a count a moment old, and the relay's hot path pays
//! one uncontended add per read, no lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shared by every relay of one [`crate::Proxy`]; read at scrape time.
#[derive(Debug, Default)]
pub struct RelayCounters {
    open: AtomicU64,
    client_to_desktop: AtomicU64,
    desktop_to_client: AtomicU64,
}

impl RelayCounters {
    /// WebSockets relayed right now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Bytes read from browsers and sent on to desktops, since the proxy was made.
    pub fn client_to_desktop(&self) -> u64 {
        self.client_to_desktop.load(Ordering::Relaxed)
    }

    /// Bytes read from desktops and sent on to browsers, since the proxy was made.
    pub fn desktop_to_client(&self) -> u64 {
        self.desktop_to_client.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, from_client: bool, bytes: usize) {
        let counter = if from_client {
            &self.client_to_desktop
        } else {
            &self.desktop_to_client
        };
        counter.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts one relay as open until the returned guard is dropped (also when the relay's
    /// task is cancelled).
    pub(crate) fn opened(self: &Arc<Self>) -> OpenRelay {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenRelay(self.clone())
    }
}

/// One open relay; dropping it closes it in the counts.
pub(crate) struct OpenRelay(Arc<RelayCounters>);

impl Drop for OpenRelay {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}
