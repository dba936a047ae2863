//! Who watches which student's screen right now: the student's view page and dashboard show
//! it live, and the audit log gets an entry when watching starts and when it ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use portal_store::{AuditEvent, AuditKind, Store};
use tokio::sync::broadcast;

/// The watchers of one desktop changed.
#[derive(Clone, Debug)]
pub struct WatchChange {
    pub desktop_id: String,
    /// The desktop's owner: only her event stream gets the change.
    pub owner_id: String,
    /// Display names of everyone watching now (empty: nobody).
    pub watchers: Vec<String>,
}

/// One desktop's watchers and its owner.
struct Watched {
    owner_id: String,
    /// (mark id, watcher's display name).
    marks: Vec<(u64, String)>,
}

/// Watchers per desktop id.
#[derive(Default)]
pub struct Watchers {
    by_desktop: Mutex<HashMap<String, Watched>>,
    next: AtomicU64,
    changes: std::sync::OnceLock<broadcast::Sender<WatchChange>>,
}

/// Who watches, as the audit log names them.
pub struct WatchParties<'a> {
    pub desktop_id: &'a str,
    pub owner_id: &'a str,
    pub owner_username: &'a str,
    pub watcher_username: &'a str,
    pub watcher_name: &'a str,
}

impl Watchers {
    fn sender(&self) -> &broadcast::Sender<WatchChange> {
        self.changes.get_or_init(|| broadcast::channel(64).0)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<WatchChange> {
        self.sender().subscribe()
    }

    /// Display names of those watching `desktop_id` now.
    pub fn of(&self, desktop_id: &str) -> Vec<String> {
        let map = self.by_desktop.lock().unwrap_or_else(|p| p.into_inner());
        map.get(desktop_id).map(names).unwrap_or_default()
    }

    /// The watched desktops of `owner_id` with their watchers' names (a new event stream
    /// starts with them).
    pub fn of_owner(&self, owner_id: &str) -> Vec<WatchChange> {
        let map = self.by_desktop.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, w)| w.owner_id == owner_id)
            .map(|(id, w)| WatchChange {
                desktop_id: id.clone(),
                owner_id: owner_id.to_owned(),
                watchers: names(w),
            })
            .collect()
    }

    /// Records that watching begins (audit entry, live change); it ends when the mark drops.
    pub async fn start(self: &Arc<Self>, store: &Store, p: WatchParties<'_>) -> WatchMark {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        {
            let mut map = self.by_desktop.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(p.desktop_id.to_owned())
                .or_insert_with(|| Watched {
                    owner_id: p.owner_id.to_owned(),
                    marks: Vec::new(),
                })
                .marks
                .push((id, p.watcher_name.to_owned()));
        }
        self.publish(p.desktop_id, p.owner_id);
        crate::domain::audit::record(store, entry(&p, "started".into())).await;
        WatchMark {
            watchers: self.clone(),
            store: store.clone(),
            id,
            since: Instant::now(),
            desktop_id: p.desktop_id.to_owned(),
            owner_id: p.owner_id.to_owned(),
            owner_username: p.owner_username.to_owned(),
            watcher_username: p.watcher_username.to_owned(),
        }
    }

    fn publish(&self, desktop_id: &str, owner_id: &str) {
        let _ = self.sender().send(WatchChange {
            desktop_id: desktop_id.to_owned(),
            owner_id: owner_id.to_owned(),
            watchers: self.of(desktop_id),
        });
    }
}

/// The names of a desktop's watchers, each once.
fn names(w: &Watched) -> Vec<String> {
    let mut names: Vec<String> = w.marks.iter().map(|(_, n)| n.clone()).collect();
    names.sort();
    names.dedup();
    names
}

fn entry(p: &WatchParties<'_>, detail: String) -> AuditEvent {
    AuditEvent {
        actor: Some(p.watcher_username.to_owned()),
        username: Some(p.owner_username.to_owned()),
        target: Some(p.desktop_id.to_owned()),
        ..AuditEvent::new(AuditKind::ScreenWatched, detail)
    }
}

/// One teacher watching one screen; dropping it ends the watching.
pub struct WatchMark {
    watchers: Arc<Watchers>,
    store: Store,
    id: u64,
    since: Instant,
    desktop_id: String,
    owner_id: String,
    owner_username: String,
    watcher_username: String,
}

impl Drop for WatchMark {
    fn drop(&mut self) {
        {
            let mut map = self.watchers.by_desktop.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(w) = map.get_mut(&self.desktop_id) {
                w.marks.retain(|(id, _)| *id != self.id);
                if w.marks.is_empty() {
                    map.remove(&self.desktop_id);
                }
            }
        }
        self.watchers.publish(&self.desktop_id, &self.owner_id);
        let event = entry(
            &WatchParties {
                desktop_id: &self.desktop_id,
                owner_id: &self.owner_id,
                owner_username: &self.owner_username,
                watcher_username: &self.watcher_username,
                watcher_name: "",
            },
            format!("ended after {} s", self.since.elapsed().as_secs()),
        );
        let store = self.store.clone();
        // Drop cannot wait; the entry follows within moments.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { crate::domain::audit::record(&store, event).await });
        }
    }
}
