//! The fair start queue: at most `limits.max_concurrent_starts` desktops start at once; the
//! starts beyond wait for their turn in the order they came (at most `limits.max_start_queue`
//! of them), and each waiting start knows its place, for the dashboard.
//!
//! A place is handed from the start that ends straight to the first in line, so nobody who
//! came later can slip in between, and the order the pages show is the order that holds.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, watch};

use crate::telemetry::metrics::Metrics;

/// Why a start could not even join the queue.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("{waiting} desktop starts are already waiting; try again in a minute")]
    Full { waiting: usize },
}

/// The starts running and waiting.
pub struct StartQueue {
    shared: Arc<Shared>,
}

struct Shared {
    line: Mutex<Line>,
    /// Starts that may wait; beyond, [`QueueError::Full`].
    max_waiting: usize,
    /// Bumped whenever the line changes, so each waiting start can tell its new place.
    changed: watch::Sender<u64>,
    metrics: Arc<Metrics>,
}

struct Line {
    /// Places free now (nobody waits while one is).
    free: usize,
    waiting: VecDeque<Waiter>,
    /// The next ticket's number: tickets, not desktop ids, identify a waiter, so a start that
    /// is cancelled and asked for again never mistakes its old ticket for its new one.
    next: u64,
}

struct Waiter {
    ticket: u64,
    desktop_id: String,
    turn: oneshot::Sender<Place>,
}

/// One of the places of starts running at once; handed to the first in line when dropped.
pub struct Place {
    /// `None` once handed over (or never counted), so dropping it does nothing.
    shared: Option<Arc<Shared>>,
}

/// A start's way into the queue.
pub enum Entry {
    /// A place was free.
    Now(Place),
    /// In line; [`Ticket::turn`] waits for the place.
    Wait(Ticket),
}

/// A start waiting in line. Dropping it (a stop cancelled the start) leaves the line and, if a
/// place had just been handed to it, passes that place on.
pub struct Ticket {
    number: u64,
    shared: Arc<Shared>,
    turn: oneshot::Receiver<Place>,
}

impl StartQueue {
    /// `concurrent` starts at once, up to `max_waiting` more in line.
    pub fn new(concurrent: usize, max_waiting: usize, metrics: Arc<Metrics>) -> Self {
        metrics.start_queue_length(0);
        StartQueue {
            shared: Arc::new(Shared {
                line: Mutex::new(Line {
                    free: concurrent,
                    waiting: VecDeque::new(),
                    next: 0,
                }),
                max_waiting,
                changed: watch::channel(0).0,
                metrics,
            }),
        }
    }

    /// A place for the start of `desktop_id` now, or a ticket in line; refused when the line
    /// is full.
    pub fn enter(&self, desktop_id: &str) -> Result<Entry, QueueError> {
        let mut line = self.shared.lock();
        if line.free > 0 && line.waiting.is_empty() {
            line.free -= 1;
            return Ok(Entry::Now(Place {
                shared: Some(self.shared.clone()),
            }));
        }
        if line.waiting.len() >= self.shared.max_waiting {
            return Err(QueueError::Full {
                waiting: line.waiting.len(),
            });
        }
        let (tx, rx) = oneshot::channel();
        let number = line.next;
        line.next += 1;
        line.waiting.push_back(Waiter {
            ticket: number,
            desktop_id: desktop_id.to_owned(),
            turn: tx,
        });
        self.shared.changed_with(&line);
        Ok(Entry::Wait(Ticket {
            number,
            shared: self.shared.clone(),
            turn: rx,
        }))
    }

    /// Where the start of `desktop_id` waits: its place (from 1) and how many wait.
    pub fn place_of(&self, desktop_id: &str) -> Option<(usize, usize)> {
        let line = self.shared.lock();
        let at = line.waiting.iter().position(|w| w.desktop_id == desktop_id)?;
        Some((at + 1, line.waiting.len()))
    }

    /// How many starts wait.
    pub fn waiting(&self) -> usize {
        self.shared.lock().waiting.len()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Line> {
        self.line.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the waiting starts (and the metrics) that the line changed.
    fn changed_with(&self, line: &Line) {
        self.metrics.start_queue_length(line.waiting.len());
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Ticket {
    /// Waits for this start's turn; `on_place(place, waiting)` hears the place in line
    /// whenever it changes (at once, then as others go). `None` only if the queue broke,
    /// which leaves nothing to hand over.
    pub async fn turn(mut self, mut on_place: impl FnMut(usize, usize)) -> Option<Place> {
        let mut changes = self.shared.changed.subscribe();
        let mut told = None;
        loop {
            let now = {
                let line = self.shared.lock();
                line.waiting
                    .iter()
                    .position(|w| w.ticket == self.number)
                    .map(|at| (at + 1, line.waiting.len()))
            };
            if let Some((place, waiting)) = now
                && told != now
            {
                on_place(place, waiting);
                told = now;
            }
            tokio::select! {
                biased;
                place = &mut self.turn => return place.ok(),
                changed = changes.changed() => {
                    if changed.is_err() {
                        return (&mut self.turn).await.ok();
                    }
                }
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut line = self.shared.lock();
        if let Some(at) = line.waiting.iter().position(|w| w.ticket == self.number) {
            line.waiting.remove(at);
            self.shared.changed_with(&line);
        }
        // A place handed over in the meantime is in `turn` and passes on when it drops.
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        let mut line = shared.lock();
        while let Some(next) = line.waiting.pop_front() {
            let place = Place {
                shared: Some(shared.clone()),
            };
            match next.turn.send(place) {
                Ok(()) => {
                    shared.changed_with(&line);
                    return;
                }
                // Its ticket is being dropped (cancelled): the next in line then.
                Err(mut unclaimed) => unclaimed.shared = None,
            }
        }
        line.free += 1;
        shared.changed_with(&line);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn queue(concurrent: usize, waiting: usize) -> StartQueue {
        StartQueue::new(concurrent, waiting, Arc::default())
    }

    fn ticket(e: Entry) -> Ticket {
        match e {
            Entry::Wait(t) => t,
            Entry::Now(_) => panic!("expected to wait"),
        }
    }

    fn place(e: Entry) -> Place {
        match e {
            Entry::Now(p) => p,
            Entry::Wait(_) => panic!("expected a place"),
        }
    }

    #[tokio::test]
    async fn starts_beyond_the_places_wait_in_order_and_know_their_place() {
        let q = queue(1, 10);
        let first = place(q.enter("a").unwrap());
        let b = ticket(q.enter("b").unwrap());
        let c = ticket(q.enter("c").unwrap());
        assert_eq!(q.place_of("b"), Some((1, 2)));
        assert_eq!(q.place_of("c"), Some((2, 2)));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let c_waits = tokio::spawn(async move { c.turn(move |p, n| tx.send((p, n)).unwrap()).await.unwrap() });
        assert_eq!(rx.recv().await, Some((2, 2)));
        drop(first);
        // b got the place at once: c moves up, and a new start may not pass either of them.
        assert_eq!(rx.recv().await, Some((1, 1)));
        assert!(matches!(q.enter("d").unwrap(), Entry::Wait(_)));
        let b_place = b.turn(|_, _| {}).await.unwrap();
        drop(b_place);
        let c_place = tokio::time::timeout(Duration::from_secs(5), c_waits)
            .await
            .unwrap()
            .unwrap();
        drop(c_place);
        assert_eq!(q.waiting(), 0, "d's ticket was dropped and left the line");
        assert!(matches!(q.enter("e").unwrap(), Entry::Now(_)));
    }

    #[tokio::test]
    async fn a_cancelled_ticket_leaves_the_line_and_passes_on_a_place_it_was_handed() {
        let q = queue(1, 10);
        let first = place(q.enter("a").unwrap());
        let b = ticket(q.enter("b").unwrap());
        let c = ticket(q.enter("c").unwrap());
        drop(b);
        assert_eq!(q.place_of("c"), Some((1, 1)));
        let d = ticket(q.enter("d").unwrap());
        // c is handed the place, then cancelled before it takes it: d gets it.
        drop(first);
        drop(c);
        let d_place = tokio::time::timeout(Duration::from_secs(5), d.turn(|_, _| {}))
            .await
            .unwrap();
        assert!(d_place.is_some());
        drop(d_place);
        assert!(
            matches!(q.enter("e").unwrap(), Entry::Now(_)),
            "every place is free again"
        );
    }

    #[test]
    fn a_full_line_refuses() {
        let q = queue(1, 2);
        let _a = place(q.enter("a").unwrap());
        let _b = ticket(q.enter("b").unwrap());
        let _c = ticket(q.enter("c").unwrap());
        assert_eq!(q.enter("d").err(), Some(QueueError::Full { waiting: 2 }));
        let q = queue(1, 0);
        let _a = place(q.enter("a").unwrap());
        assert!(q.enter("b").is_err(), "no line at all: refused beyond the places");
    }
}
