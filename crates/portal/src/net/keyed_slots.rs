//! Places counted per key, up to a maximum each: connections per client address in the server
//! loop, live-update streams and desktop WebSockets per user. A [`Slot`] gives its place back
//! when dropped, so whatever holds the connection holds the place.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

type Counts<K> = Arc<Mutex<HashMap<K, usize>>>;

/// Open places per key, up to `max` each.
pub struct KeyedSlots<K> {
    max: usize,
    open: Counts<K>,
}

/// One place of `key`; freed on drop.
pub struct Slot<K: Hash + Eq> {
    open: Counts<K>,
    key: K,
}

impl<K: Hash + Eq + Clone> KeyedSlots<K> {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// The most places one key may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A place for one more of `key`, or `None` when it holds `max` already.
    pub fn take(&self, key: &K) -> Option<Slot<K>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            open: self.open.clone(),
            key: key.clone(),
        })
    }

    /// Places `key` holds now.
    pub fn open(&self, key: &K) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(key).copied().unwrap_or(0)
    }
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn places_are_per_key_and_free_when_dropped() {
        let slots = KeyedSlots::new(2);
        let a = slots.take(&"alice").unwrap();
        let _b = slots.take(&"alice").unwrap();
        assert!(slots.take(&"alice").is_none());
        assert!(slots.take(&"bob").is_some());
        drop(a);
        assert!(slots.take(&"alice").is_some());
        assert_eq!(slots.open(&"alice"), 1);
    }
}
