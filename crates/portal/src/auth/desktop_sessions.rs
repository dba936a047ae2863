//! Sessions on desktop origins, tied to portal sessions.
//!
//! A desktop origin never sees the portal's cookie. The portal hands a browser over with a
//! one-time ticket (single use, bound to one portal session and one desktop, valid for at
//! most a minute); redeeming it on the desktop's host gives that host a cookie of its own.
//! Every such cookie, and every relay or event stream opened under a portal session, is a
//! *binding* with a cancellation token: a sweep ends those whose portal session ended or whose
//! user lost access, so open WebSockets close within seconds of a sign-out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use desktop_proxy::RouteTable;
use portal_store::{Store, User};
use tokio_util::sync::CancellationToken;

use crate::domain::help::Help;

use super::random_token;

/// Tickets never live longer than this, whatever is configured.
pub const MAX_TICKET_TTL: Duration = Duration::from_secs(60);
/// Bounds on what unauthenticated or runaway use can grow: beyond them the oldest go.
const MAX_TICKETS: usize = 20_000;
const MAX_BINDINGS: usize = 100_000;
/// What one portal session may hold at once (a tab per desktop and a few reloads): beyond it the
/// session's own oldest goes, so no one can push out other people's tickets or connections.
const MAX_PER_SESSION: usize = 64;

/// What a ticket or binding belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The portal session's id (the hash of its token, never the token itself).
    pub session_id: String,
    /// The desktop it is for; `None` for a portal-wide binding (an event stream).
    pub desktop: Option<String>,
}

struct Ticket {
    owner: Owner,
    created: Instant,
}

struct Binding {
    owner: Owner,
    stop: CancellationToken,
    created: Instant,
}

/// Why a ticket was not accepted. The browser gets one answer for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("unknown or already used")]
    Unknown,
    #[error("expired")]
    Expired,
    #[error("issued for another desktop")]
    OtherDesktop,
}

/// Tickets in flight and the bindings they turned into.
pub struct DesktopSessions {
    ttl: Duration,
    tickets: Mutex<HashMap<String, Ticket>>,
    bindings: Mutex<HashMap<String, Binding>>,
}

impl DesktopSessions {
    /// Tickets valid for `ttl` (at most [`MAX_TICKET_TTL`]).
    pub fn new(ttl: Duration) -> Self {
        DesktopSessions {
            ttl: ttl.min(MAX_TICKET_TTL),
            tickets: Mutex::default(),
            bindings: Mutex::default(),
        }
    }

    /// A fresh ticket for `session_id`'s browser to enter `desktop`.
    pub fn issue_ticket(&self, session_id: &str, desktop: &str) -> String {
        let ticket = random_token();
        let mut tickets = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        tickets.retain(|_, t| t.created.elapsed() < self.ttl);
        evict_oldest_of_session(&mut tickets, session_id, |t| (&t.owner, t.created));
        evict_oldest(&mut tickets, MAX_TICKETS, |t| t.created);
        tickets.insert(
            ticket.clone(),
            Ticket {
                owner: Owner {
                    session_id: session_id.to_owned(),
                    desktop: Some(desktop.to_owned()),
                },
                created: Instant::now(),
            },
        );
        ticket
    }

    /// Takes `ticket` out (one use, whatever the outcome) if it was issued for `desktop`
    /// within its lifetime; returns the portal session it belongs to. The caller still checks
    /// that session and the user's access.
    pub fn redeem(&self, ticket: &str, desktop: &str) -> Result<String, TicketError> {
        let taken = self
            .tickets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ticket)
            .ok_or(TicketError::Unknown)?;
        if taken.created.elapsed() >= self.ttl {
            return Err(TicketError::Expired);
        }
        if taken.owner.desktop.as_deref() != Some(desktop) {
            return Err(TicketError::OtherDesktop);
        }
        Ok(taken.owner.session_id)
    }

    /// A new binding of a desktop host's cookie to `owner`; returns the cookie's value.
    pub fn bind_cookie(&self, owner: Owner) -> String {
        let key = random_token();
        self.insert(key.clone(), owner);
        key
    }

    /// The owner and stop signal of the desktop cookie `key`.
    pub fn cookie(&self, key: &str) -> Option<(Owner, CancellationToken)> {
        let bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        bindings.get(key).map(|b| (b.owner.clone(), b.stop.clone()))
    }

    /// The stop signal for whatever `owner` opens without a cookie of its own (relays on the
    /// portal's origin, event streams): one binding per session and desktop.
    pub fn stop_signal(&self, owner: Owner) -> CancellationToken {
        let key = format!(
            "session:{}:{}",
            owner.session_id,
            owner.desktop.as_deref().unwrap_or("")
        );
        if let Some(b) = self.bindings.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return b.stop.clone();
        }
        self.insert(key, owner)
    }

    fn insert(&self, key: String, owner: Owner) -> CancellationToken {
        let stop = CancellationToken::new();
        let mut bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(evicted) = evict_oldest_of_session(&mut bindings, &owner.session_id, |b| (&b.owner, b.created)) {
            evicted.stop.cancel();
        }
        if let Some(evicted) = evict_oldest(&mut bindings, MAX_BINDINGS, |b| b.created) {
            evicted.stop.cancel();
        }
        bindings.insert(
            key,
            Binding {
                owner,
                stop: stop.clone(),
                created: Instant::now(),
            },
        );
        stop
    }

    /// Every binding's owner, for the sweep.
    pub fn owners(&self) -> Vec<Owner> {
        let bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        let mut owners: Vec<Owner> = bindings.values().map(|b| b.owner.clone()).collect();
        owners.sort_by(|a, b| (&a.session_id, &a.desktop).cmp(&(&b.session_id, &b.desktop)));
        owners.dedup();
        owners
    }

    /// Ends every binding of `owner`: its cookies stop working, its relays and streams close.
    pub fn end(&self, owner: &Owner) -> usize {
        self.end_where(|o| o == owner)
    }

    /// Ends every binding of portal session `session_id` (at sign-out: at once, not at the
    /// next sweep).
    pub fn end_session(&self, session_id: &str) -> usize {
        self.end_where(|o| o.session_id == session_id)
    }

    fn end_where(&self, ends: impl Fn(&Owner) -> bool) -> usize {
        let mut bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        let before = bindings.len();
        bindings.retain(|_, b| {
            let end = ends(&b.owner);
            if end {
                b.stop.cancel();
            }
            !end
        });
        before - bindings.len()
    }
}

/// How often bindings are checked against their sessions and access rights.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

impl DesktopSessions {
    /// One check of every binding: its portal session must still live (not signed out, not
    /// ended by an administrator, not expired) and its user must still may use its desktop (a
    /// role change or a removed group takes effect here; a helper's grant counts while it
    /// lasts). Returns how many owners ended.
    pub async fn sweep(&self, store: &Store, routes: &RouteTable, help: &Help, idle: Option<Duration>) -> usize {
        let mut ended = 0;
        let mut checked: HashMap<String, Option<User>> = HashMap::new();
        for owner in self.owners() {
            let user = match checked.get(&owner.session_id) {
                Some(u) => u.clone(),
                None => {
                    let found = match store.peek_session(&owner.session_id, idle).await {
                        Ok(found) => found.map(|(_, user)| user),
                        // The store is down: keep everything until it answers.
                        Err(e) => {
                            tracing::warn!(error = %e, "checking desktop sessions failed");
                            return ended;
                        }
                    };
                    checked.insert(owner.session_id.clone(), found.clone());
                    found
                }
            };
            let allowed = match (&user, &owner.desktop) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(user), Some(id)) => routes.get(id).is_some_and(|t| help.may_use(user, &t)),
            };
            if !allowed {
                ended += self.end(&owner);
            }
        }
        ended
    }

    /// [`DesktopSessions::sweep`] every [`SWEEP_INTERVAL`], forever.
    pub async fn sweep_forever(
        self: Arc<Self>,
        store: Store,
        routes: Arc<RouteTable>,
        help: Arc<Help>,
        idle: Option<Duration>,
    ) {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let ended = self.sweep(&store, &routes, &help, idle).await;
            if ended > 0 {
                tracing::info!(
                    ended,
                    "closed desktop sessions whose portal session ended or lost access"
                );
            }
        }
    }
}

/// Removes `session_id`'s oldest entry when it holds [`MAX_PER_SESSION`]; returns it.
fn evict_oldest_of_session<V>(
    map: &mut HashMap<String, V>,
    session_id: &str,
    owner_and_created: impl Fn(&V) -> (&Owner, Instant),
) -> Option<V> {
    let mut own = map
        .iter()
        .filter(|(_, v)| owner_and_created(v).0.session_id == session_id);
    let first = own.next()?;
    let (count, oldest) = own.fold((1, first), |(n, old), e| {
        let older = if owner_and_created(e.1).1 < owner_and_created(old.1).1 {
            e
        } else {
            old
        };
        (n + 1, older)
    });
    if count < MAX_PER_SESSION {
        return None;
    }
    let key = oldest.0.clone();
    map.remove(&key)
}

/// Removes the oldest entry when `map` is full; returns it.
fn evict_oldest<V>(map: &mut HashMap<String, V>, max: usize, created: impl Fn(&V) -> Instant) -> Option<V> {
    if map.len() < max {
        return None;
    }
    let oldest = map.iter().min_by_key(|(_, v)| created(v)).map(|(k, _)| k.clone())?;
    map.remove(&oldest)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn owner(session: &str, desktop: &str) -> Owner {
        Owner {
            session_id: session.into(),
            desktop: Some(desktop.into()),
        }
    }

    #[test]
    fn tickets_are_single_use_and_for_one_desktop() {
        let s = DesktopSessions::new(Duration::from_secs(60));
        let t = s.issue_ticket("s1", "alice-x");
        assert_eq!(s.redeem(&t, "bob-x"), Err(TicketError::OtherDesktop));
        // The wrong desktop used it up: a guessed host cannot be retried.
        assert_eq!(s.redeem(&t, "alice-x"), Err(TicketError::Unknown));
        let t = s.issue_ticket("s1", "alice-x");
        assert_eq!(s.redeem(&t, "alice-x").unwrap(), "s1");
        assert_eq!(s.redeem(&t, "alice-x"), Err(TicketError::Unknown));
        assert_eq!(s.redeem("made-up", "alice-x"), Err(TicketError::Unknown));
    }

    #[test]
    fn tickets_expire() {
        let s = DesktopSessions::new(Duration::from_millis(20));
        let t = s.issue_ticket("s1", "a");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(s.redeem(&t, "a"), Err(TicketError::Expired));
        assert_eq!(DesktopSessions::new(Duration::from_secs(3600)).ttl, MAX_TICKET_TTL);
    }

    #[test]
    fn ending_an_owner_cancels_its_bindings_only() {
        let s = DesktopSessions::new(Duration::from_secs(60));
        let cookie = s.bind_cookie(owner("s1", "a"));
        let (_, stop) = s.cookie(&cookie).unwrap();
        let relay = s.stop_signal(owner("s1", "a"));
        let other = s.stop_signal(owner("s2", "a"));
        assert_eq!(s.owners().len(), 2);
        assert_eq!(s.end(&owner("s1", "a")), 2);
        assert!(stop.is_cancelled() && relay.is_cancelled() && !other.is_cancelled());
        assert!(s.cookie(&cookie).is_none());
    }

    #[test]
    fn one_session_cannot_push_out_anothers_tickets_or_connections() {
        let s = DesktopSessions::new(Duration::from_secs(60));
        let alices_ticket = s.issue_ticket("alice", "a");
        let alices_cookie = s.bind_cookie(owner("alice", "a"));
        let (_, alices_stop) = s.cookie(&alices_cookie).unwrap();
        let first_of_mallory = s.bind_cookie(owner("mallory", "m"));
        for _ in 0..(MAX_PER_SESSION * 3) {
            let _ = s.issue_ticket("mallory", "m");
            let _ = s.bind_cookie(owner("mallory", "m"));
        }
        assert_eq!(s.redeem(&alices_ticket, "a").unwrap(), "alice");
        assert!(s.cookie(&alices_cookie).is_some() && !alices_stop.is_cancelled());
        assert!(s.cookie(&first_of_mallory).is_none(), "mallory's own oldest went");
        let mallorys = s
            .bindings
            .lock()
            .unwrap()
            .values()
            .filter(|b| b.owner.session_id == "mallory")
            .count();
        assert_eq!(mallorys, MAX_PER_SESSION);
    }
}
