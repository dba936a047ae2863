//! One live progress stream for long jobs (a desktop's start, an image pull): the steps so far
//! for whoever subscribes late, and a broadcast for the steps to come. The web layer renders
//! any of them as server-sent events with one function (`web::events::progress_sse`).

use std::sync::Mutex;

use tokio::sync::broadcast;

/// A step of some job's progress.
pub trait Step: Clone + Send + Sync + 'static {
    /// The kind of step, which pages listen for (the server-sent event's name).
    fn name(&self) -> &'static str;
    /// Whether the job ended with this step; nothing follows it.
    fn is_last(&self) -> bool;
}

/// The progress of one job.
pub struct Progress<S> {
    tx: broadcast::Sender<S>,
    history: Mutex<Vec<S>>,
    /// Steps kept for late subscribers; a pull of a large image reports many, and the first
    /// and the latest matter.
    keep: usize,
}

impl<S: Step> Progress<S> {
    /// A stream that keeps up to `keep` steps for late subscribers (the first one always).
    pub fn new(keep: usize) -> Self {
        let keep = keep.max(2);
        Progress {
            tx: broadcast::channel(keep).0,
            history: Mutex::new(Vec::new()),
            keep,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<S>> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records and sends a step; under the history lock, so no subscriber misses or doubles it.
    pub fn emit(&self, step: S) {
        let mut history = self.lock();
        if history.len() >= self.keep {
            history.remove(1);
        }
        history.push(step.clone());
        let _ = self.tx.send(step);
    }

    /// The steps so far and, unless the job ended, the channel for the ones to come.
    pub fn follow(&self) -> (Vec<S>, Option<broadcast::Receiver<S>>) {
        let history = self.lock();
        let finished = history.iter().any(Step::is_last);
        (history.clone(), (!finished).then(|| self.tx.subscribe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct N(u32, bool);

    impl Step for N {
        fn name(&self) -> &'static str {
            "n"
        }
        fn is_last(&self) -> bool {
            self.1
        }
    }

    #[tokio::test]
    async fn late_subscribers_see_the_first_and_latest_steps_then_live_ones() {
        let p = Progress::new(3);
        for i in 0..5 {
            p.emit(N(i, false));
        }
        let (history, rx) = p.follow();
        assert_eq!(history, [N(0, false), N(3, false), N(4, false)]);
        let mut rx = rx.expect("still running");
        p.emit(N(5, true));
        assert_eq!(rx.recv().await.ok(), Some(N(5, true)));
        let (history, rx) = p.follow();
        assert_eq!(history.last(), Some(&N(5, true)));
        assert!(rx.is_none(), "an ended job has nothing to follow");
    }
}
