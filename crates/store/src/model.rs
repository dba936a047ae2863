//! Plain data types handed to and returned by the store.

use std::fmt;
use std::str::FromStr;

use crate::StoreError;

/// What a user may do in the portal. Stored as its lowercase name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages desktop types, users and every desktop.
    Admin,
    /// Sees and joins the desktops of their classes.
    Teacher,
    /// Uses their own desktops only.
    Student,
}

impl Role {
    /// Every role, most privileged first.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Teacher, Role::Student];

    /// The name used in the database, configuration and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Teacher => "teacher",
            Role::Student => "student",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = StoreError;

    /// Accepts the names case-insensitively, since they come from config files and CLI flags.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| StoreError::Invalid(format!("unknown role {s:?}; valid roles are admin, teacher, student")))
    }
}

/// A portal user, local or from OpenID Connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Random 32-character hex id; never shown as a login name.
    pub id: String,
    /// Lowercase login name, `^[a-z0-9][a-z0-9._-]{0,63}$`; part of default desktop ids.
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: Role,
    /// The identity provider's `sub` once the user has signed in through OpenID Connect.
    pub external_subject: Option<String>,
    /// Names the user's home volume: `u-{id}` for accounts created since migration 0008 (a
    /// name no other account can get), the username at creation for older ones; kept through
    /// renames so a user renamed in IServ keeps their files.
    pub home_name: String,
    /// Group names, sorted bytewise.
    pub groups: Vec<String>,
    /// Preferred UI language (e.g. `de`, `en-GB`), `None` to follow the browser.
    pub language: Option<String>,
    /// Whether a local password is set (the hash itself never leaves the store).
    pub has_password: bool,
    /// The administrator who allowed the next IServ sign-in with this username to take this
    /// local account over; `None` if nobody did.
    pub link_allowed_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A user as the identity provider describes them at sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalUser {
    /// The provider's stable `sub` claim.
    pub subject: String,
    /// Login name (`preferred_username`); lowercased and validated like local usernames.
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: Role,
    /// Replaces the user's stored groups entirely.
    pub groups: Vec<String>,
}

/// A server-side session.
#[derive(Clone, Debug)]
pub struct Session {
    /// sha256 hex of the cookie token.
    pub id: String,
    pub user_id: String,
    /// Random token for forms and state-changing API calls.
    pub csrf_token: String,
    /// Desktop the root `/websockify` route falls back to.
    pub current_desktop: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the session is invalid from this second on.
    pub expires_at: i64,
}

/// A freshly created session and the token that goes into the cookie.
///
/// The token exists only here: the database keeps its hash, so it cannot be looked up again.
/// No `Debug`, so the token does not end up in logs by accident.
pub struct NewSession {
    /// 32 random bytes, URL-safe base64 without padding.
    pub token: String,
    pub session: Session,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
            assert_eq!(role.to_string(), role.as_str());
        }
        assert_eq!(" Teacher ".parse::<Role>().ok(), Some(Role::Teacher));
        let err = "root".parse::<Role>().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("admin, teacher, student"), "{err}");
    }
}
