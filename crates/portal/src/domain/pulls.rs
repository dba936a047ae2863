//! Image pulls admins started: one at a time per desktop type, with their progress kept for
//! pages that subscribe late.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use desktop_runtime::ContainerRuntime;
use portal_store::{AuditEvent, AuditKind, Store};
use serde::Serialize;
use tokio::sync::broadcast;

use super::progress::{Progress, Step};

/// A pull's step. In JSON each is its payload alone (the event name says which it is), as
/// the admin page's script reads them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PullStep {
    /// The runtime's own report (`{"step": "pulling", …}`).
    Progress(desktop_runtime::Progress),
    Done {
        image: String,
    },
    Failed {
        reason: String,
    },
}

impl Step for PullStep {
    fn name(&self) -> &'static str {
        match self {
            PullStep::Progress(_) => "progress",
            PullStep::Done { .. } => "done",
            PullStep::Failed { .. } => "failed",
        }
    }

    fn is_last(&self) -> bool {
        !matches!(self, PullStep::Progress(_))
    }
}

/// Steps kept per pull for late subscribers.
const PULL_HISTORY: usize = 512;

/// Image pulls in flight, by desktop type; one at a time per type.
#[derive(Default)]
pub struct Pulls(Mutex<HashMap<String, Arc<Progress<PullStep>>>>);

impl Pulls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Progress<PullStep>>>> {
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
            let pull = Arc::new(Progress::new(PULL_HISTORY));
            pulls.insert(key.to_owned(), pull.clone());
            pull
        };
        let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
        let (pulls, key) = (self.clone(), key.to_owned());
        tokio::spawn(async move {
            let forward_pull = pull.clone();
            let forward = tokio::spawn(async move {
                while let Some(p) = prx.recv().await {
                    forward_pull.emit(PullStep::Progress(p));
                }
            });
            let result = runtime.pull(&image, ptx).await;
            let _ = forward.await;
            let (detail, last) = match result {
                Ok(()) => (format!("pulled image {image}"), PullStep::Done { image }),
                Err(e) => (
                    format!("pulling image {image} failed: {e}"),
                    PullStep::Failed { reason: e.to_string() },
                ),
            };
            super::audit::record(
                &store,
                AuditEvent::new(AuditKind::AdminAction, detail)
                    .actor(actor)
                    .target(&key),
            )
            .await;
            pull.emit(last);
            pulls.lock().remove(&key);
        });
    }

    /// The steps so far of `key`'s pull and, unless it ended, the live channel; `None` when
    /// no pull of it runs.
    pub fn follow(&self, key: &str) -> Option<(Vec<PullStep>, Option<broadcast::Receiver<PullStep>>)> {
        Some(self.lock().get(key).cloned()?.follow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The admin page's script reads these names and payloads; they must not change.
    #[test]
    fn pull_steps_keep_their_event_names_and_payloads() {
        let json = |s: &PullStep| (s.name(), s.is_last(), serde_json::to_value(s).ok());
        let pulling = PullStep::Progress(desktop_runtime::Progress::Pulling {
            image: "i".into(),
            layer: None,
            status: "Waiting".into(),
            current: None,
            total: None,
        });
        assert_eq!(
            json(&pulling),
            (
                "progress",
                false,
                Some(
                    serde_json::json!({"step": "pulling", "image": "i", "layer": null, "status": "Waiting", "current": null, "total": null})
                )
            )
        );
        assert_eq!(
            json(&PullStep::Done { image: "i".into() }),
            ("done", true, Some(serde_json::json!({"image": "i"})))
        );
        assert_eq!(
            json(&PullStep::Failed { reason: "no".into() }),
            ("failed", true, Some(serde_json::json!({"reason": "no"})))
        );
    }
}
