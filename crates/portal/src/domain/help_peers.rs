//! Help grants another portal replica gave: when a student accepts a teacher's offer on one
//! portal, the others learn of the grant (PostgreSQL `NOTIFY` on [`HELP_CHANNEL`]) so that the
//! teacher's requests on a desktop host reach the desktop through any of them, and learn of
//! its end, which closes what the teacher opened there.
//!
//! Only grants travel, not requests and offers (those are shown on the portal that took
//! them). Nothing here outlives what this replica heard: a replica that missed notifications
//! (its listener broke) or started later knows no grant of the others, and so admits nobody
//! by one — it fails closed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use portal_store::HELP_CHANNEL;

/// A grant given, or ended, on another replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantNotice {
    /// The sending replica's random id: a replica skips its own notices.
    pub from: String,
    pub desktop_id: String,
    /// The helping teacher's user id.
    pub helper_id: String,
    /// When the grant ends by itself (unix seconds).
    pub until: i64,
    /// The grant ended (by the student, the teacher, the desktop stopping or the time limit).
    pub ended: bool,
}

struct PeerGrant {
    helper_id: String,
    expires: Instant,
    /// The helper's portal sessions that entered here under this grant: closed when it ends.
    sessions: BTreeSet<String>,
}

/// A desktop and the helper sessions to close on it.
pub type ToClose = (String, Vec<String>);

/// The grants of the other replicas, by desktop id.
#[derive(Default)]
pub struct PeerGrants(Mutex<HashMap<String, PeerGrant>>);

impl PeerGrants {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PeerGrant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `notice` (already known to be another replica's); what to close.
    pub fn apply(&self, notice: &GrantNotice, now_unix: i64) -> Option<ToClose> {
        let mut grants = self.lock();
        if notice.ended {
            let gone = grants.remove(&notice.desktop_id)?;
            return Some((notice.desktop_id.clone(), gone.sessions.into_iter().collect()));
        }
        let left = u64::try_from(notice.until.saturating_sub(now_unix)).unwrap_or(0);
        let replaced = grants.insert(
            notice.desktop_id.clone(),
            PeerGrant {
                helper_id: notice.helper_id.clone(),
                expires: Instant::now() + Duration::from_secs(left),
                sessions: BTreeSet::new(),
            },
        );
        // A grant to another helper replaces the old one, whose sessions lose it.
        replaced
            .filter(|old| old.helper_id != notice.helper_id)
            .map(|old| (notice.desktop_id.clone(), old.sessions.into_iter().collect()))
    }

    /// Whether `helper_id` holds a live grant on `desktop_id`; if so, notes `session_id`
    /// (when given) so the grant's end closes what it opens here.
    pub fn admit(&self, helper_id: &str, desktop_id: &str, session_id: Option<&str>) -> bool {
        let mut grants = self.lock();
        match grants.get_mut(desktop_id) {
            Some(g) if g.helper_id == helper_id && Instant::now() < g.expires => {
                if let Some(s) = session_id {
                    g.sessions.insert(s.to_owned());
                }
                true
            }
            _ => false,
        }
    }

    /// Ends the grants for which `ends(desktop id, expired)` holds; what to close.
    pub fn end_if(&self, ends: impl Fn(&str, bool) -> bool) -> Vec<ToClose> {
        let now = Instant::now();
        let mut grants = self.lock();
        let ids: Vec<String> = grants
            .iter()
            .filter(|(id, g)| ends(id, g.expires <= now))
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| grants.remove(&id).map(|g| (id, g.sessions.into_iter().collect())))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn notice(desktop: &str, helper: &str, until: i64, ended: bool) -> GrantNotice {
        GrantNotice {
            from: "other".into(),
            desktop_id: desktop.into(),
            helper_id: helper.into(),
            until,
            ended,
        }
    }

    #[test]
    fn a_peers_grant_admits_its_helper_until_it_ends_or_expires() {
        let g = PeerGrants::default();
        assert!(!g.admit("tina", "sam-x", None), "nothing heard: nobody");
        assert_eq!(g.apply(&notice("sam-x", "tina", 1_000 + 1800, false), 1_000), None);
        assert!(g.admit("tina", "sam-x", Some("s1")));
        assert!(!g.admit("theo", "sam-x", None), "only the helper");
        assert!(!g.admit("tina", "otto-x", None), "only that desktop");
        let closed = g.apply(&notice("sam-x", "tina", 0, true), 1_000).unwrap();
        assert_eq!(closed, ("sam-x".to_owned(), vec!["s1".to_owned()]));
        assert!(!g.admit("tina", "sam-x", None));

        // Already over when it arrives; and ended by the tick.
        g.apply(&notice("sam-x", "tina", 999, false), 1_000);
        assert!(!g.admit("tina", "sam-x", None));
        assert_eq!(g.end_if(|_, expired| expired).len(), 1);
        g.apply(&notice("sam-x", "tina", 5_000, false), 1_000);
        assert!(g.end_if(|_, expired| expired).is_empty());
        assert_eq!(g.end_if(|id, _| id == "sam-x").len(), 1);
    }
}
