//! Image pulls admins started: one at a time per desktop type, with their progress kept for
//! pages that subscribe late.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use desktop_runtime::ContainerRuntime;
use portal_store::{AuditEvent, AuditKind, Store};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// A pull's step: its event name (`progress`, `done`, `failed`) and data.
pub type PullStep = (String, Value);

/// One image pull: the events so far (for late subscribers) and the live channel.
struct Pull {
    tx: broadcast::Sender<PullStep>,
    history: Mutex<Vec<PullStep>>,
}

/// Steps kept per pull for late subscribers.
const PULL_HISTORY: usize = 512;

impl Pull {
    fn emit(&self, event: &str, data: Value) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if history.len() >= PULL_HISTORY {
            history.remove(1);
        }
        history.push((event.to_owned(), data.clone()));
        let _ = self.tx.send((event.to_owned(), data));
    }
}

/// Image pulls in flight, by desktop type; one at a time per type.
#[derive(Default)]
pub struct Pulls(Mutex<HashMap<String, Arc<Pull>>>);

impl Pulls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Pull>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts pulling `image` for type `key` unless a pull of it runs; the end is audited
    /// (before subscribers hear it, so the log is complete when they look).
    pub fn begin(
        self: &Arc<Self>,
        runtime: Arc<dyn ContainerRuntime>,
        store: Store,
        key: &str,
        image: String,
        actor: String,
    ) {
        let pull = {
            let mut pulls = self.lock();
            if pulls.contains_key(key) {
                return;
            }
            let pull = Arc::new(Pull {
                tx: broadcast::channel(PULL_HISTORY).0,
                history: Mutex::new(Vec::new()),
            });
            pulls.insert(key.to_owned(), pull.clone());
            pull
        };
        let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
        let (pulls, key) = (self.clone(), key.to_owned());
        tokio::spawn(async move {
            let forward_pull = pull.clone();
            let forward = tokio::spawn(async move {
                while let Some(p) = prx.recv().await {
                    forward_pull.emit("progress", json!(p));
                }
            });
            let result = runtime.pull(&image, ptx).await;
            let _ = forward.await;
            let (detail, event, data) = match result {
                Ok(()) => (format!("pulled image {image}"), "done", json!({ "image": image })),
                Err(e) => (
                    format!("pulling image {image} failed: {e}"),
                    "failed",
                    json!({ "reason": e.to_string() }),
                ),
            };
            super::audit::record(
                &store,
                AuditEvent::new(AuditKind::AdminAction, detail)
                    .actor(actor)
                    .target(&key),
            )
            .await;
            pull.emit(event, data);
            pulls.lock().remove(&key);
        });
    }

    /// The steps so far of `key`'s pull and, unless it ended, the live channel; `None` when
    /// no pull of it runs.
    pub fn follow(&self, key: &str) -> Option<(Vec<PullStep>, Option<broadcast::Receiver<PullStep>>)> {
        let pull = self.lock().get(key).cloned()?;
        let history = pull.history.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let rx = pull.tx.subscribe();
        let finished = history.iter().any(|(n, _)| is_last(n));
        Some((history, (!finished).then_some(rx)))
    }
}

/// Whether `event` ends a pull.
pub fn is_last(event: &str) -> bool {
    event == "done" || event == "failed"
}
