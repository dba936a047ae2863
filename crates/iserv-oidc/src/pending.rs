//! Sign-ins on their way through IServ: state, nonce and PKCE verifier, kept server-side.
//!
//! Each entry is found by its `state` and bound to the browser that started it by a random
//! value in a short-lived HttpOnly cookie, so a callback URL pushed to someone else's browser
//! (login CSRF) does not sign them in. Entries are taken out on first use and expire after
//! [`PENDING_TTL`]. They live in memory: several portal replicas need sticky sessions for the
//! few seconds of a sign-in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq as _;

/// How long a started sign-in may take.
pub const PENDING_TTL: Duration = Duration::from_secs(10 * 60);
/// Bound on concurrent sign-ins kept (a flood of `/auth/login` requests must not grow memory
/// without bound).
const MAX_PENDING: usize = 10_000;
/// Sign-ins kept per source (client address); a source's oldest go first. A class signing in
/// behind one school router needs a few dozen at once.
pub(crate) const MAX_PENDING_PER_SOURCE: usize = 100;

/// What the callback needs to finish a sign-in.
pub(crate) struct Pending {
    /// Random value also held in the browser's cookie.
    pub binding: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go afterwards (a path on the portal).
    pub return_to: String,
    pub created: Instant,
    /// Who started it (the portal passes the client's address): a flood from one source only
    /// pushes out that source's own sign-ins.
    pub source: String,
}

/// Why a callback's `state` does not lead to a sign-in.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TakeError {
    /// Never issued, already used, or expired.
    Unknown,
    /// Issued to another browser.
    OtherBrowser,
}

#[derive(Default)]
pub(crate) struct PendingSignIns {
    entries: Mutex<HashMap<String, Pending>>,
}

impl PendingSignIns {
    /// Keeps `pending`. When its source already has [`MAX_PENDING_PER_SOURCE`], that source's
    /// oldest goes; when the whole map is full, the oldest of the source with the most goes.
    /// So a flood pushes out its own entries, never a single real sign-in elsewhere.
    pub(crate) fn insert(&self, state: String, pending: Pending) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, p| p.created.elapsed() < PENDING_TTL);
        let mut per_source: HashMap<&str, usize> = HashMap::new();
        for p in map.values() {
            *per_source.entry(p.source.as_str()).or_default() += 1;
        }
        let own = per_source.get(pending.source.as_str()).copied().unwrap_or(0);
        let evict_from = if own >= MAX_PENDING_PER_SOURCE {
            Some(pending.source.clone())
        } else if map.len() >= MAX_PENDING {
            per_source
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(source, _)| (*source).to_owned())
        } else {
            None
        };
        if let Some(source) = evict_from
            && let Some(oldest) = map
                .iter()
                .filter(|(_, p)| p.source == source)
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(state, pending);
    }

    /// Takes the sign-in for `state` out (one use only) if `binding` is the browser's.
    pub(crate) fn take(&self, state: &str, binding: Option<&str>) -> Result<Pending, TakeError> {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let pending = map.remove(state).ok_or(TakeError::Unknown)?;
        if pending.created.elapsed() >= PENDING_TTL {
            return Err(TakeError::Unknown);
        }
        if pending.binding.is_empty()
            || !binding.is_some_and(|b| bool::from(b.as_bytes().ct_eq(pending.binding.as_bytes())))
        {
            return Err(TakeError::OtherBrowser);
        }
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(binding: &str) -> Pending {
        from(binding, "10.0.0.1")
    }

    fn from(binding: &str, source: &str) -> Pending {
        Pending {
            binding: binding.into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            return_to: "/".into(),
            created: Instant::now(),
            source: source.into(),
        }
    }

    #[test]
    fn a_flood_pushes_out_only_its_own_sign_ins() {
        let p = PendingSignIns::default();
        p.insert("real".into(), from("b-real", "10.0.0.1"));
        // One source, far beyond its share.
        for i in 0..MAX_PENDING_PER_SOURCE * 3 {
            p.insert(format!("flood{i}"), from("b", "10.6.6.6"));
        }
        // Many sources, filling the whole map.
        for i in 0..MAX_PENDING {
            p.insert(format!("wide{i}"), from("b", &format!("flood-{}", i / 50)));
        }
        let len = p.entries.lock().unwrap_or_else(|e| e.into_inner()).len();
        assert!(len <= MAX_PENDING, "{len}");
        assert!(p.take("real", Some("b-real")).is_ok(), "the real sign-in survived");
        // The single source kept at most its share, its newest.
        assert_eq!(p.take("flood0", Some("b")).err(), Some(TakeError::Unknown));
    }

    #[test]
    fn one_use_and_bound_to_the_browser() {
        let p = PendingSignIns::default();
        p.insert("s1".into(), pending("b1"));
        assert_eq!(p.take("s1", Some("other")).err(), Some(TakeError::OtherBrowser));
        // A wrong browser used it up: the right one cannot replay it either.
        assert_eq!(p.take("s1", Some("b1")).err(), Some(TakeError::Unknown));
        p.insert("s2".into(), pending("b2"));
        assert!(p.take("s2", Some("b2")).is_ok());
        assert_eq!(p.take("s2", Some("b2")).err(), Some(TakeError::Unknown));
        assert_eq!(p.take("s3", None).err(), Some(TakeError::Unknown));
    }
}
