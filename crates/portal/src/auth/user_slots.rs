//! Long-lived connections one user may hold open at once (live-update streams, desktop
//! WebSockets): each holds a slot until it closes, so one account cannot tie up the portal's
//! connections and memory for everyone else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Counts open connections of one kind per user id, up to `max` each.
pub struct UserSlots {
    max: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open connection; its slot frees when this is dropped.
#[derive(Debug)]
pub struct Slot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    user_id: String,
}

/// All of a user's slots are taken.
#[derive(Debug, thiserror::Error)]
#[error("at most {max} open at once per user")]
pub struct SlotsFull {
    pub max: usize,
}

impl UserSlots {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// A slot for one more connection of `user_id`, or why not.
    pub fn take(&self, user_id: &str) -> Result<Slot, SlotsFull> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(user_id.to_owned()).or_insert(0);
        if *n >= self.max {
            return Err(SlotsFull { max: self.max });
        }
        *n += 1;
        Ok(Slot {
            open: self.open.clone(),
            user_id: user_id.to_owned(),
        })
    }

    /// Connections `user_id` holds open now.
    pub fn open(&self, user_id: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(user_id).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_per_user_and_free_when_dropped() {
        let slots = UserSlots::new(2);
        let a = slots.take("alice").unwrap();
        let _b = slots.take("alice").unwrap();
        assert!(slots.take("alice").is_err());
        assert!(slots.take("bob").is_ok());
        drop(a);
        assert!(slots.take("alice").is_ok());
        assert_eq!(slots.open("alice"), 1);
    }
}
