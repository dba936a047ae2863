//! Short-lived tickets for PDF previews on the preview origin (`p0-preview` under the desktop
//! hosts): the portal hands a signed-in user a URL with a random ticket, and the preview
//! origin serves that one file for a few minutes. The preview origin never sees a portal
//! cookie, so a hostile PDF there acts as nobody; access is checked again on every request
//! against the user the ticket was made for. Tickets live in the store (only their hashes),
//! so a preview made on one portal replica opens on any other.

use std::time::Duration;

use portal_files::RelPath;
use portal_store::{Store, StoreError};

use crate::domain::files::SpaceKind;

/// How long a preview URL works: long enough for the viewer's range requests and a reload.
pub const PREVIEW_TTL: Duration = Duration::from_secs(300);

/// What a ticket lets the preview origin serve.
#[derive(Debug, Clone)]
pub struct PreviewTicket {
    /// The user who asked (her access is checked again when the file is read).
    pub user_id: String,
    pub kind: SpaceKind,
    pub path: RelPath,
}

/// The tickets, kept in the store.
pub struct PreviewTickets {
    store: Store,
}

impl PreviewTickets {
    pub fn new(store: Store) -> Self {
        PreviewTickets { store }
    }

    /// A new ticket for `path` of `kind` as seen by `user_id`.
    pub async fn issue(&self, user_id: &str, kind: &SpaceKind, path: &RelPath) -> Result<String, StoreError> {
        // The group or assignment goes first, as in the space's URLs, so `SpaceKind::parse`
        // reads it back.
        let folder = kind.folder_name();
        let stored = match kind {
            SpaceKind::Home | SpaceKind::Shared => path.to_string(),
            _ if path.is_root() => folder,
            _ => format!("{folder}/{path}"),
        };
        self.store
            .issue_preview_ticket(user_id, kind.as_str(), &stored, PREVIEW_TTL)
            .await
    }

    /// The ticket behind `token`, while it is valid (reusable until it expires: a PDF viewer
    /// asks for the same file several times).
    pub async fn get(&self, token: &str) -> Result<Option<PreviewTicket>, StoreError> {
        let Some(stored) = self.store.preview_ticket(token).await? else {
            return Ok(None);
        };
        // A row this code did not write (or a path grown too deep by its folder) is no ticket.
        let parsed = RelPath::parse(&stored.path)
            .ok()
            .and_then(|path| SpaceKind::parse(&stored.space, path).ok());
        Ok(parsed.map(|(kind, path)| PreviewTicket {
            user_id: stored.user_id,
            kind,
            path,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use portal_store::Role;
    use secrecy::SecretString;

    use super::*;

    #[tokio::test]
    async fn tickets_are_random_and_name_one_file_of_one_space() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let user = store
            .create_local_user(
                "u1",
                "U",
                Role::Student,
                &SecretString::from("a long password".to_owned()),
            )
            .await
            .unwrap();
        let t = PreviewTickets::new(store);
        let a = t
            .issue(&user.id, &SpaceKind::Home, &RelPath::parse("a.pdf").unwrap())
            .await
            .unwrap();
        let b = t
            .issue(&user.id, &SpaceKind::Home, &RelPath::parse("a.pdf").unwrap())
            .await
            .unwrap();
        assert_ne!(a, b);
        assert!(a.len() >= 32);
        let got = t.get(&a).await.unwrap().unwrap();
        assert_eq!(got.path.to_string(), "a.pdf");
        assert!(matches!(got.kind, SpaceKind::Home));
        let class = SpaceKind::Class("5a".into());
        let c = t
            .issue(&user.id, &class, &RelPath::parse("x/Blatt.pdf").unwrap())
            .await
            .unwrap();
        let got = t.get(&c).await.unwrap().unwrap();
        assert!(matches!(&got.kind, SpaceKind::Class(g) if g == "5a"), "{:?}", got.kind);
        assert_eq!(got.path.to_string(), "x/Blatt.pdf");
        assert!(t.get("guess").await.unwrap().is_none());
    }
}
