//! The routing table: desktop id → where it runs and how to sign in to it.
//!
//! Read on every proxied request, so it is an in-memory map behind a read-mostly lock,
//! never a database query.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use secrecy::SecretString;

/// How the proxy talks to the desktop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Credentials the proxy injects upstream; the browser never sees them.
#[derive(Clone)]
pub struct BasicAuth {
    pub username: String,
    pub password: SecretString,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A resolved desktop: everything needed to reach it and to decide who may.
#[derive(Clone, Debug)]
pub struct Target {
    /// URL id, as in `/desktop/{id}/`.
    pub desktop_id: String,
    /// Display name for listings.
    pub name: String,
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Verify the desktop's TLS certificate (Kasm's are self-signed, so usually off).
    pub verify_tls: bool,
    pub basic_auth: Option<BasicAuth>,
    /// Ids of the users who may use this desktop: a started desktop's owner. Ids, never
    /// usernames: a username can be renamed away and then taken by someone else, who must not
    /// inherit a running desktop. (Admins may always; the caller decides that.)
    pub owner_ids: Vec<String>,
    /// Usernames named in the configuration of a static desktop (a shared lab machine).
    pub usernames: Vec<String>,
    /// Groups whose members may use this desktop (shared lab machines).
    pub groups: Vec<String>,
}

impl Target {
    /// `host:port`, with IPv6 addresses bracketed.
    pub fn authority(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether the user with this id, name and these groups is among the desktop's audience.
    pub fn allows(&self, user_id: &str, username: &str, groups: &[String]) -> bool {
        self.owner_ids.iter().any(|o| o == user_id)
            || self.usernames.iter().any(|u| u == username)
            || self.groups.iter().any(|g| groups.contains(g))
    }
}

/// Concurrent map of desktop ids to targets.
#[derive(Default)]
pub struct RouteTable {
    inner: RwLock<HashMap<String, Arc<Target>>>,
}

impl RouteTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, desktop_id: &str) -> Option<Arc<Target>> {
        self.read().get(desktop_id).cloned()
    }

    /// Adds or replaces the route for `target.desktop_id`.
    pub fn insert(&self, target: Target) {
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.insert(target.desktop_id.clone(), Arc::new(target));
    }

    pub fn remove(&self, desktop_id: &str) -> Option<Arc<Target>> {
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.remove(desktop_id)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// All targets, sorted by id (for listings).
    pub fn all(&self) -> Vec<Arc<Target>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.desktop_id.cmp(&b.desktop_id));
        all
    }

    // A poisoned lock only means another thread panicked mid-insert of a whole Arc;
    // the map itself is still consistent, so keep serving.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Target>>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
}
