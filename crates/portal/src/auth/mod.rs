//! Who is asking and whether to believe them: sessions and their cookies, CSRF checks, and the
//! brake on guessed passwords. The sign-in pages themselves are in [`crate::web::signin`].

pub mod brake;
pub mod desktop_sessions;
pub mod preview_tickets;
pub mod sessions;

pub use brake::{LoginLimiter, PasswordChecks};
pub use sessions::{CookieNames, CsrfRejected, CurrentUser, check_csrf, cookie_value, random_token, tokens_match};
