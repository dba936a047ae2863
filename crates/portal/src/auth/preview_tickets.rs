//! Short-lived tickets for PDF previews on the preview origin (`p0-preview` under the desktop
//! hosts): the portal hands a signed-in user a URL with a random ticket, and the preview
//! origin serves that one file for a few minutes. The preview origin never sees a portal
//! cookie, so a hostile PDF there acts as nobody; access is checked again on every request
//! against the user the ticket was made for.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use portal_files::RelPath;

use crate::domain::files::SpaceKind;

/// How long a preview URL works: long enough for the viewer's range requests and a reload.
pub const PREVIEW_TTL: Duration = Duration::from_secs(300);
/// Tickets kept at most; beyond this the oldest go first (each is a few hundred bytes).
const MAX_TICKETS: usize = 10_000;

/// What a ticket lets the preview origin serve.
#[derive(Debug, Clone)]
pub struct PreviewTicket {
    /// The user who asked (her access is checked again when the file is read).
    pub user_id: String,
    pub kind: SpaceKind,
    pub path: RelPath,
    issued: Instant,
}

/// The tickets issued and not yet expired.
#[derive(Debug, Default)]
pub struct PreviewTickets {
    tickets: Mutex<HashMap<String, PreviewTicket>>,
}

impl PreviewTickets {
    /// A new ticket for `path` of `kind` as seen by `user_id`.
    pub fn issue(&self, user_id: &str, kind: SpaceKind, path: RelPath) -> String {
        let token = portal_store::random_secret::<24>();
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        tickets.retain(|_, t| t.issued.elapsed() < PREVIEW_TTL);
        if tickets.len() >= MAX_TICKETS
            && let Some(oldest) = tickets.iter().min_by_key(|(_, t)| t.issued).map(|(k, _)| k.clone())
        {
            tickets.remove(&oldest);
        }
        tickets.insert(
            token.clone(),
            PreviewTicket {
                user_id: user_id.to_owned(),
                kind,
                path,
                issued: Instant::now(),
            },
        );
        token
    }

    /// The ticket behind `token`, while it is valid (reusable until it expires: a PDF viewer
    /// asks for the same file several times).
    pub fn get(&self, token: &str) -> Option<PreviewTicket> {
        let tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        tickets.get(token).filter(|t| t.issued.elapsed() < PREVIEW_TTL).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_random_and_name_one_file() {
        let t = PreviewTickets::default();
        let a = t.issue("u1", SpaceKind::Home, RelPath::parse("a.pdf").unwrap());
        let b = t.issue("u1", SpaceKind::Home, RelPath::parse("a.pdf").unwrap());
        assert_ne!(a, b);
        assert!(a.len() >= 32);
        assert_eq!(t.get(&a).unwrap().path.to_string(), "a.pdf");
        assert!(t.get("guess").is_none());
    }
}
