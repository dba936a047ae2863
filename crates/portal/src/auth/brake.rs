//! The sign-in brake: failed local sign-ins counted per account and address, per account, and
//! per address, each with its own limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts allowed within [`LOCKOUT`]: per account and address, per account from any
/// address (slow guessing spread over many machines), and per address for any account (one
/// password tried on many accounts). The last is generous because a whole school may share
/// one address behind its router.
const MAX_PAIR_FAILURES: u32 = 5;
const MAX_ACCOUNT_FAILURES: u32 = 10;
const MAX_ADDRESS_FAILURES: u32 = 50;
const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Beyond this many tracked keys the oldest entries are dropped, so a flood of made-up
/// usernames cannot grow memory without bound.
const MAX_TRACKED: usize = 30_000;

/// What failures are counted for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, IpAddr),
    Account(String),
    Address(IpAddr),
}

impl Key {
    fn all(username: &str, ip: IpAddr) -> [Key; 3] {
        [
            Key::Pair(username.to_owned(), ip),
            Key::Account(username.to_owned()),
            Key::Address(ip),
        ]
    }

    fn limit(&self) -> u32 {
        match self {
            Key::Pair(..) => MAX_PAIR_FAILURES,
            Key::Account(_) => MAX_ACCOUNT_FAILURES,
            Key::Address(_) => MAX_ADDRESS_FAILURES,
        }
    }
}

/// Counts failed sign-ins per account, per client address and per pair of both.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<Key, (u32, Instant)>>,
}

impl LoginLimiter {
    /// How long until `username` may try again from `ip`; `None` if it may now.
    pub fn blocked(&self, username: &str, ip: IpAddr) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Key::all(username, ip)
            .iter()
            .filter_map(|key| {
                let (n, since) = map.get(key)?;
                (*n >= key.limit() && since.elapsed() < LOCKOUT).then(|| LOCKOUT.saturating_sub(since.elapsed()))
            })
            .max()
    }

    pub fn record_failure(&self, username: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() + 3 > MAX_TRACKED {
            map.retain(|_, (_, since)| since.elapsed() < LOCKOUT);
        }
        if map.len() + 3 > MAX_TRACKED {
            return;
        }
        for key in Key::all(username, ip) {
            let entry = map.entry(key).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= LOCKOUT {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
    }

    /// After a successful sign-in; the address keeps its count (others behind it may guess).
    pub fn clear(&self, username: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&Key::Pair(username.to_owned(), ip));
        map.remove(&Key::Account(username.to_owned()));
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
        assert!(wait > Duration::from_secs(14 * 60) && wait <= LOCKOUT, "{wait:?}");
        assert!(l.blocked("bob", ip).is_none());
        assert!(l.blocked("alice", IpAddr::from([10, 0, 0, 1])).is_none());
        l.clear("alice", ip);
        assert!(l.blocked("alice", ip).is_none());
    }

    #[test]
    fn limiter_blocks_an_account_guessed_from_many_addresses() {
        let l = LoginLimiter::default();
        for i in 0..MAX_ACCOUNT_FAILURES {
            l.record_failure("alice", IpAddr::from([10, 0, 0, u8::try_from(i).unwrap()]));
        }
        assert!(l.blocked("alice", IpAddr::from([192, 168, 1, 1])).is_some());
        assert!(l.blocked("bob", IpAddr::from([192, 168, 1, 1])).is_none());
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
}
