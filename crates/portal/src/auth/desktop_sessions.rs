//! Sessions on desktop origins, tied to portal sessions.
//!
//! A desktop origin never sees the portal's cookie. The portal hands a browser over with a
//! one-time ticket (single use, bound to one portal session and one desktop, valid for at
//! most a minute); redeeming it on the desktop's host gives that host a cookie of its own.
//! Tickets and cookies live in the store (only their hashes), so a ticket issued on one
//! portal replica redeems on any other, exactly once, and a cookie works on every replica.
//!
//! Every such cookie in use here, and every relay or event stream opened under a portal
//! session, is a *binding* in this replica's memory with a cancellation token: a sweep ends
//! those whose portal session ended (on any replica), whose cookie is gone from the store, or
//! whose user lost access, so open WebSockets close within seconds of a sign-out anywhere.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use desktop_proxy::RouteTable;
use portal_store::{MAX_HANDOVERS_PER_SESSION, Store, StoreError, User, handover_id};
use tokio_util::sync::CancellationToken;

use crate::domain::help::Help;

/// Tickets never live longer than this, whatever is configured.
pub const MAX_TICKET_TTL: Duration = Duration::from_secs(60);
/// Bounds on what this replica keeps in memory: beyond them the oldest go.
const MAX_BINDINGS: usize = 100_000;
/// What one portal session may hold at once here (a tab per desktop and a few reloads):
/// beyond it the session's own oldest goes, so no one can push out other people's
/// connections. The store keeps the same bound on tickets and cookies.
const MAX_PER_SESSION: usize = MAX_HANDOVERS_PER_SESSION;

/// What a ticket or binding belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The portal session's id (the hash of its token, never the token itself).
    pub session_id: String,
    /// The desktop it is for; `None` for a portal-wide binding (an event stream).
    pub desktop: Option<String>,
}

struct Binding {
    owner: Owner,
    stop: CancellationToken,
    created: Instant,
    /// A desktop cookie's id in the store; `None` for a stop signal of this replica's own.
    cookie: Option<String>,
}

/// Why a ticket was not accepted. The browser gets one answer for all but the last.
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("unknown or already used")]
    Unknown,
    #[error("expired")]
    Expired,
    #[error("issued for another desktop")]
    OtherDesktop,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tickets (in the store) and this replica's bindings.
pub struct DesktopSessions {
    store: Store,
    ttl: Duration,
    bindings: Mutex<HashMap<String, Binding>>,
    /// Wakes the sweep before its next tick (another replica changed sessions).
    nudge: tokio::sync::Notify,
}

impl DesktopSessions {
    /// Tickets valid for `ttl` (at most [`MAX_TICKET_TTL`]).
    pub fn new(store: Store, ttl: Duration) -> Self {
        DesktopSessions {
            store,
            ttl: ttl.min(MAX_TICKET_TTL),
            bindings: Mutex::default(),
            nudge: tokio::sync::Notify::new(),
        }
    }

    /// Sweeps now rather than at the next tick: a sign-out or ended session on another replica
    /// closes the relays here at once.
    pub fn sweep_soon(&self) {
        self.nudge.notify_one();
    }

    /// A fresh ticket for `session_id`'s browser to enter `desktop`.
    pub async fn issue_ticket(&self, session_id: &str, desktop: &str) -> Result<String, StoreError> {
        self.store.issue_desktop_ticket(session_id, desktop, self.ttl).await
    }

    /// Takes `ticket` out (one use across all replicas, whatever the outcome) if it was
    /// issued for `desktop` within its lifetime; returns the portal session it belongs to.
    /// The caller still checks that session and the user's access.
    pub async fn redeem(&self, ticket: &str, desktop: &str) -> Result<String, TicketError> {
        let taken = self
            .store
            .take_desktop_ticket(ticket)
            .await?
            .ok_or(TicketError::Unknown)?;
        if taken.expired {
            return Err(TicketError::Expired);
        }
        if taken.handover.desktop_id != desktop {
            return Err(TicketError::OtherDesktop);
        }
        Ok(taken.handover.session_id)
    }

    /// A new binding of a desktop host's cookie to `owner` (a desktop's); returns the
    /// cookie's value.
    pub async fn bind_cookie(&self, session_id: &str, desktop: &str) -> Result<String, StoreError> {
        let cookie = self.store.bind_desktop_cookie(session_id, desktop).await?;
        let id = handover_id(&cookie);
        let owner = Owner {
            session_id: session_id.to_owned(),
            desktop: Some(desktop.to_owned()),
        };
        self.insert(id.clone(), owner, Some(id));
        Ok(cookie)
    }

    /// The owner and stop signal of the desktop cookie `cookie`, made on any replica.
    pub async fn cookie(&self, cookie: &str) -> Result<Option<(Owner, CancellationToken)>, StoreError> {
        let id = handover_id(cookie);
        if let Some(known) = self.cached(&id) {
            return Ok(Some(known));
        }
        let Some(stored) = self.store.desktop_cookie(cookie).await? else {
            return Ok(None);
        };
        let owner = Owner {
            session_id: stored.session_id,
            desktop: Some(stored.desktop_id),
        };
        // Two first requests at once share one binding.
        if let Some(known) = self.cached(&id) {
            return Ok(Some(known));
        }
        let stop = self.insert(id.clone(), owner.clone(), Some(id));
        Ok(Some((owner, stop)))
    }

    fn cached(&self, id: &str) -> Option<(Owner, CancellationToken)> {
        let bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        bindings.get(id).map(|b| (b.owner.clone(), b.stop.clone()))
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
        self.insert(key, owner, None)
    }

    fn insert(&self, key: String, owner: Owner, cookie: Option<String>) -> CancellationToken {
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
                cookie,
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

    /// Ends every binding of `owner` here: its cookies stop working on this replica (others
    /// check the same access at their next request or sweep), its relays and streams close.
    pub fn end(&self, owner: &Owner) -> usize {
        self.end_where(|b| &b.owner == owner)
    }

    /// Ends every binding of portal session `session_id` here (at sign-out: at once, not at
    /// the next sweep; the store drops its cookies with the session).
    pub fn end_session(&self, session_id: &str) -> usize {
        self.end_where(|b| b.owner.session_id == session_id)
    }

    fn end_where(&self, ends: impl Fn(&Binding) -> bool) -> usize {
        let mut bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        let before = bindings.len();
        bindings.retain(|_, b| {
            let end = ends(b);
            if end {
                b.stop.cancel();
            }
            !end
        });
        before - bindings.len()
    }

    /// The sessions that hold cookie bindings here.
    fn sessions_with_cookies(&self) -> HashSet<String> {
        let bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        bindings
            .values()
            .filter(|b| b.cookie.is_some())
            .map(|b| b.owner.session_id.clone())
            .collect()
    }
}

/// How often bindings are checked against their sessions and access rights.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

impl DesktopSessions {
    /// One check of every binding: its portal session must still live (not signed out, not
    /// ended by an administrator, not expired) and its user must still may use its desktop (a
    /// role change or a removed group takes effect here; a helper's grant counts while it
    /// lasts); a cached cookie must still stand in the store. Returns how many bindings ended.
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
        match self.end_cookies_gone_from_store(store).await {
            Ok(n) => ended + n,
            Err(e) => {
                tracing::warn!(error = %e, "checking desktop cookies failed");
                ended
            }
        }
    }

    /// Ends the cached cookies that no longer stand in the store (pushed out by their
    /// session's bound, or ended by another replica); how many.
    async fn end_cookies_gone_from_store(&self, store: &Store) -> Result<usize, StoreError> {
        let mut ended = 0;
        for session_id in self.sessions_with_cookies() {
            let standing: HashSet<String> = store.desktop_cookie_ids(&session_id).await?.into_iter().collect();
            ended += self.end_where(|b| {
                b.owner.session_id == session_id && b.cookie.as_ref().is_some_and(|id| !standing.contains(id))
            });
        }
        Ok(ended)
    }

    /// [`DesktopSessions::sweep`] every [`SWEEP_INTERVAL`] and when nudged, forever.
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
            tokio::select! {
                _ = tick.tick() => {}
                () = self.nudge.notified() => {}
            }
            let ended = self.sweep(&store, &routes, &help, idle).await;
            // Many sign-outs in a row nudge many times: a sweep reads every session held here,
            // so they are at least this far apart.
            tokio::time::sleep(Duration::from_millis(250)).await;
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
    use portal_store::Role;
    use secrecy::SecretString;

    use super::*;

    fn owner(session: &str, desktop: &str) -> Owner {
        Owner {
            session_id: session.into(),
            desktop: Some(desktop.into()),
        }
    }

    /// Desktop sessions on a fresh SQLite store, and the ids of `n` portal sessions in it.
    async fn world(ttl: Duration, n: usize) -> (DesktopSessions, Vec<String>) {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let user = store
            .create_local_user(
                "u",
                "U",
                Role::Student,
                &SecretString::from("a long password".to_owned()),
            )
            .await
            .unwrap();
        let mut sessions = Vec::new();
        for _ in 0..n {
            let s = store.create_session(&user.id, Duration::from_secs(3600)).await.unwrap();
            sessions.push(s.session.id);
        }
        (DesktopSessions::new(store, ttl), sessions)
    }

    #[tokio::test]
    async fn tickets_are_single_use_and_for_one_desktop() {
        let (s, ids) = world(Duration::from_secs(60), 1).await;
        let t = s.issue_ticket(&ids[0], "alice-x").await.unwrap();
        assert!(matches!(s.redeem(&t, "bob-x").await, Err(TicketError::OtherDesktop)));
        // The wrong desktop used it up: a guessed host cannot be retried.
        assert!(matches!(s.redeem(&t, "alice-x").await, Err(TicketError::Unknown)));
        let t = s.issue_ticket(&ids[0], "alice-x").await.unwrap();
        assert_eq!(s.redeem(&t, "alice-x").await.unwrap(), ids[0]);
        assert!(matches!(s.redeem(&t, "alice-x").await, Err(TicketError::Unknown)));
        assert!(matches!(
            s.redeem("made-up", "alice-x").await,
            Err(TicketError::Unknown)
        ));
    }

    #[tokio::test]
    async fn tickets_expire() {
        let (s, ids) = world(Duration::from_millis(20), 1).await;
        let t = s.issue_ticket(&ids[0], "a").await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(matches!(s.redeem(&t, "a").await, Err(TicketError::Expired)));
        let (s, _) = world(Duration::from_secs(3600), 0).await;
        assert_eq!(s.ttl, MAX_TICKET_TTL);
    }

    #[tokio::test]
    async fn ending_an_owner_cancels_its_bindings_only() {
        let (s, ids) = world(Duration::from_secs(60), 2).await;
        let cookie = s.bind_cookie(&ids[0], "a").await.unwrap();
        let (_, stop) = s.cookie(&cookie).await.unwrap().unwrap();
        let relay = s.stop_signal(owner(&ids[0], "a"));
        let other = s.stop_signal(owner(&ids[1], "a"));
        assert_eq!(s.owners().len(), 2);
        assert_eq!(s.end(&owner(&ids[0], "a")), 2);
        assert!(stop.is_cancelled() && relay.is_cancelled() && !other.is_cancelled());
        // The cookie still stands in the store (for the sweep and other replicas to judge);
        // it comes back with a new stop signal.
        let (_, again) = s.cookie(&cookie).await.unwrap().unwrap();
        assert!(!again.is_cancelled());
    }

    #[tokio::test]
    async fn a_cookie_made_by_another_replica_works_here_and_ends_with_its_row() {
        let (a, ids) = world(Duration::from_secs(60), 1).await;
        let b = DesktopSessions::new(a.store.clone(), Duration::from_secs(60));
        let cookie = a.bind_cookie(&ids[0], "d").await.unwrap();
        let (owner_on_b, stop_on_b) = b.cookie(&cookie).await.unwrap().unwrap();
        assert_eq!(owner_on_b, owner(&ids[0], "d"));
        assert!(b.cookie("made-up").await.unwrap().is_none());
        a.store.end_desktop_cookies(&ids[0], Some("d")).await.unwrap();
        assert_eq!(b.end_cookies_gone_from_store(&a.store).await.unwrap(), 1);
        assert!(stop_on_b.is_cancelled());
        assert!(b.cookie(&cookie).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn one_session_cannot_push_out_anothers_tickets_or_connections() {
        let (s, ids) = world(Duration::from_secs(60), 2).await;
        let (alice, mallory) = (&ids[0], &ids[1]);
        let alices_ticket = s.issue_ticket(alice, "a").await.unwrap();
        let alices_cookie = s.bind_cookie(alice, "a").await.unwrap();
        let (_, alices_stop) = s.cookie(&alices_cookie).await.unwrap().unwrap();
        let first_of_mallory = s.bind_cookie(mallory, "m").await.unwrap();
        let (_, first_stop) = s.cookie(&first_of_mallory).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        for _ in 0..(MAX_PER_SESSION * 2) {
            let _ = s.issue_ticket(mallory, "m").await.unwrap();
            let _ = s.bind_cookie(mallory, "m").await.unwrap();
        }
        assert_eq!(s.redeem(&alices_ticket, "a").await.unwrap(), *alice);
        assert!(s.cookie(&alices_cookie).await.unwrap().is_some() && !alices_stop.is_cancelled());
        assert!(first_stop.is_cancelled(), "mallory's own oldest went");
        assert!(
            s.cookie(&first_of_mallory).await.unwrap().is_none(),
            "and from the store"
        );
        let mallorys = s
            .bindings
            .lock()
            .unwrap()
            .values()
            .filter(|b| &b.owner.session_id == mallory)
            .count();
        assert_eq!(mallorys, MAX_PER_SESSION);
    }
}
