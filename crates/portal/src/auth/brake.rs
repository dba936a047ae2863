//! The sign-in brake: failed local sign-ins counted per account and address, per account, and
//! per address (an IPv6 client counts per /64), and the bound on password checks running at once.
//!
//! A pair (account, address) and an address are locked for a while after too many failures.
//! An account is never locked as a whole: that would let anyone lock the administrator out
//! from elsewhere. Instead every further try on it waits longer and longer, except from an
//! address where the account signed in successfully before.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::net::client_addr::client_group;

/// Failed attempts allowed within [`WINDOW`] per account and address, and per address for
/// any account (one password tried on many accounts). The latter is generous because a whole
/// school may share one address behind its router.
const MAX_PAIR_FAILURES: u32 = 5;
const MAX_ADDRESS_FAILURES: u32 = 50;
/// Failures on one account from anywhere before each further try has to wait: 1 s after the
/// next failure, then 2, 4, … up to [`MAX_ACCOUNT_DELAY`].
const ACCOUNT_FREE_FAILURES: u32 = 5;
const MAX_ACCOUNT_DELAY: Duration = Duration::from_secs(60);
/// How long failures count, and how long a locked pair or address stays locked.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Tracked keys at most; beyond it the least recently failed go first, so a flood of made-up
/// usernames or addresses costs bounded memory and still cannot switch the brake off.
pub const MAX_TRACKED: usize = 30_000;
/// Addresses remembered as an account's own (where it signed in); the oldest go first.
const MAX_KNOWN: usize = 30_000;
/// A remembered address stays the account's own this long after its last sign-in there.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// What failures are counted for; addresses are [`client_group`]s.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, IpAddr),
    Account(String),
    Address(IpAddr),
}

impl Key {
    fn all(username: &str, group: IpAddr) -> [Key; 3] {
        [
            Key::Pair(username.to_owned(), group),
            Key::Account(username.to_owned()),
            Key::Address(group),
        ]
    }
}

/// Failures of one key within the current window.
#[derive(Clone, Copy, Debug)]
struct Count {
    failures: u32,
    first: Instant,
    last: Instant,
}

impl Count {
    fn current(&self) -> bool {
        self.first.elapsed() < WINDOW
    }

    /// How long a key with `limit` stays locked; `None` if it is not.
    fn lock(&self, limit: u32) -> Option<Duration> {
        (self.current() && self.failures >= limit).then(|| WINDOW.saturating_sub(self.first.elapsed()))
    }

    /// How long until the next try on an account may be checked; `None` if now.
    fn slowdown(&self) -> Option<Duration> {
        let over = self
            .failures
            .checked_sub(ACCOUNT_FREE_FAILURES)
            .filter(|n| *n > 0 && self.current())?;
        let delay = Duration::from_secs(1u64 << (over - 1).min(16)).min(MAX_ACCOUNT_DELAY);
        let wait = delay.saturating_sub(self.last.elapsed());
        (!wait.is_zero()).then_some(wait)
    }
}

#[derive(Default)]
struct Tables {
    failures: HashMap<Key, Count>,
    /// (account, address) → last successful sign-in there.
    known: HashMap<(String, IpAddr), Instant>,
}

/// Counts failed sign-ins per account, per client address and per pair of both.
pub struct LoginLimiter {
    tables: Mutex<Tables>,
    capacity: usize,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::with_capacity(MAX_TRACKED)
    }
}

impl LoginLimiter {
    /// A brake tracking at most `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            tables: Mutex::default(),
            capacity: capacity.max(3),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long until `username` may try again from `ip`; `None` if it may now.
    pub fn blocked(&self, username: &str, ip: IpAddr) -> Option<Duration> {
        let group = client_group(ip);
        let t = self.lock();
        let get = |key: Key| t.failures.get(&key).copied();
        let own_address = t
            .known
            .get(&(username.to_owned(), group))
            .is_some_and(|at| at.elapsed() < KNOWN_FOR);
        [
            get(Key::Pair(username.to_owned(), group)).and_then(|c| c.lock(MAX_PAIR_FAILURES)),
            get(Key::Address(group)).and_then(|c| c.lock(MAX_ADDRESS_FAILURES)),
            get(Key::Account(username.to_owned()))
                .filter(|_| !own_address)
                .and_then(|c| c.slowdown()),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    pub fn record_failure(&self, username: &str, ip: IpAddr) {
        let mut t = self.lock();
        if t.failures.len() + 3 > self.capacity {
            evict_oldest(&mut t.failures, self.capacity);
        }
        let now = Instant::now();
        for key in Key::all(username, client_group(ip)) {
            let c = t.failures.entry(key).or_insert(Count {
                failures: 0,
                first: now,
                last: now,
            });
            if !c.current() {
                *c = Count {
                    failures: 0,
                    first: now,
                    last: now,
                };
            }
            c.failures += 1;
            c.last = now;
        }
    }

    /// After a successful sign-in: the address becomes one of the account's own; it keeps its
    /// own count (others behind it may guess).
    pub fn succeeded(&self, username: &str, ip: IpAddr) {
        let group = client_group(ip);
        let mut t = self.lock();
        t.failures.remove(&Key::Pair(username.to_owned(), group));
        t.failures.remove(&Key::Account(username.to_owned()));
        if t.known.len() >= MAX_KNOWN {
            t.known.retain(|_, at| at.elapsed() < KNOWN_FOR);
        }
        if t.known.len() >= MAX_KNOWN
            && let Some(oldest) = t.known.iter().min_by_key(|(_, at)| **at).map(|(k, _)| k.clone())
        {
            t.known.remove(&oldest);
        }
        t.known.insert((username.to_owned(), group), Instant::now());
    }

    /// Keys tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.lock().failures.len()
    }
}

/// Makes room in a full table: expired keys go, then the least recently failed eighth, so the
/// scan's cost is spread over many failures rather than paid at each one.
fn evict_oldest(map: &mut HashMap<Key, Count>, capacity: usize) {
    map.retain(|_, c| c.current());
    if map.len() + 3 <= capacity {
        return;
    }
    let mut lasts: Vec<Instant> = map.values().map(|c| c.last).collect();
    let drop = (lasts.len() / 8).max(3).min(lasts.len() - 1);
    let (_, cut, _) = lasts.select_nth_unstable(drop);
    let cut = *cut;
    map.retain(|_, c| c.last > cut);
}

/// Password checks (argon2, about 19 MiB each on the blocking pool) running at once are
/// bounded: a crowd of sign-ins waits briefly for a slot, then is told to come back, instead
/// of queueing without bound and taking the memory with it.
pub struct PasswordChecks {
    slots: Semaphore,
    wait: Duration,
}

impl PasswordChecks {
    pub fn new(slots: usize, wait: Duration) -> Self {
        Self {
            slots: Semaphore::new(slots.max(1)),
            wait,
        }
    }

    /// A slot for one check, or `None` when none freed up in time.
    pub async fn slot(&self) -> Option<SemaphorePermit<'_>> {
        tokio::time::timeout(self.wait, self.slots.acquire()).await.ok()?.ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_the_pair_after_five_failures() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([127, 0, 0, 1]);
        for _ in 0..MAX_PAIR_FAILURES {
            assert!(l.blocked("alice", ip).is_none());
            l.record_failure("alice", ip);
        }
        let wait = l.blocked("alice", ip).expect("blocked");
        assert!(wait > Duration::from_secs(14 * 60) && wait <= WINDOW, "{wait:?}");
        assert!(l.blocked("bob", ip).is_none());
        l.succeeded("alice", ip);
        assert!(l.blocked("alice", ip).is_none());
    }

    #[test]
    fn an_account_guessed_from_many_addresses_is_slowed_down_not_locked() {
        let l = LoginLimiter::default();
        let own = IpAddr::from([192, 168, 1, 1]);
        l.succeeded("alice", own);
        for i in 0..=ACCOUNT_FREE_FAILURES {
            l.record_failure("alice", IpAddr::from([10, 0, 0, u8::try_from(i).unwrap()]));
        }
        let wait = l.blocked("alice", IpAddr::from([10, 0, 1, 1])).expect("slowed down");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(l.blocked("alice", own).is_none(), "her own address is not slowed down");
        assert!(l.blocked("bob", IpAddr::from([10, 0, 1, 1])).is_none());
    }

    #[test]
    fn the_slowdown_grows_with_failures_up_to_a_minute() {
        let now = Instant::now();
        let count = |failures| Count {
            failures,
            first: now,
            last: now,
        };
        assert!(count(ACCOUNT_FREE_FAILURES).slowdown().is_none());
        let secs = |n| {
            count(ACCOUNT_FREE_FAILURES + n)
                .slowdown()
                .unwrap()
                .as_secs_f64()
                .ceil() as u64
        };
        assert_eq!([secs(1), secs(2), secs(3), secs(7), secs(40)], [1, 2, 4, 60, 60]);
    }

    #[test]
    fn limiter_blocks_an_address_trying_many_accounts() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 9, 8, 7]);
        for i in 0..MAX_ADDRESS_FAILURES {
            l.record_failure(&format!("user{i}"), ip);
        }
        assert!(l.blocked("someone-else", ip).is_some());
        assert!(l.blocked("someone-else", IpAddr::from([10, 9, 8, 6])).is_none());
    }

    #[test]
    fn a_full_table_drops_its_oldest_and_keeps_counting() {
        let l = LoginLimiter::with_capacity(300);
        for i in 0..1000u32 {
            l.record_failure(&format!("made-up{i}"), IpAddr::from(i.to_be_bytes()));
        }
        assert!(l.tracked() <= 300, "{}", l.tracked());
        let ip = IpAddr::from([10, 1, 1, 1]);
        for _ in 0..MAX_PAIR_FAILURES {
            l.record_failure("alice", ip);
        }
        assert!(l.blocked("alice", ip).is_some());
    }
}
