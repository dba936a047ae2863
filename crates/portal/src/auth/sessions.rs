//! Who is asking: the session cookie, the signed-in user, and CSRF checks. (The extractor that
//! reads them from a request is [`crate::web::extract`].)
//!
//! Sessions live in the store; the cookie holds only a random token. Cookies are HttpOnly and
//! SameSite=Lax (Strict would drop the cookie on the redirect back from IServ); when the
//! public URL is https they are also Secure and carry the `__Host-` prefix.

use cookie::{Cookie, SameSite};
use http::HeaderMap;
use http::header::{COOKIE, ORIGIN};
use portal_store::{Role, Session, User};
use subtle::ConstantTimeEq as _;

/// The signed-in user of this request, with their session.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub user: User,
    pub session: Session,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

/// Names of the portal's cookies, which depend on whether the portal is served over https.
#[derive(Clone, Debug)]
pub struct CookieNames {
    pub session: &'static str,
    pub login_csrf: &'static str,
    /// Binds a sign-in through IServ to the browser that started it (10 minutes).
    pub oidc_pending: &'static str,
    /// A desktop host's own cookie (set only on desktop origins, never on the portal's).
    pub desktop: &'static str,
    pub secure: bool,
}

impl CookieNames {
    pub fn new(https: bool) -> Self {
        if https {
            Self {
                session: "__Host-ird_session",
                login_csrf: "__Host-ird_login",
                oidc_pending: "__Host-ird_oidc",
                desktop: "__Host-ird_desktop",
                secure: true,
            }
        } else {
            Self {
                session: "ird_session",
                login_csrf: "ird_login",
                oidc_pending: "ird_oidc",
                desktop: "ird_desktop",
                secure: false,
            }
        }
    }

    /// A cookie with the portal's rules; `max_age` None removes it.
    pub fn build(&self, name: &'static str, value: String, max_age: Option<cookie::time::Duration>) -> String {
        let mut c = Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .build();
        match max_age {
            Some(age) => c.set_max_age(age),
            None => c.make_removal(),
        }
        c.to_string()
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Constant-time comparison of a submitted token with the expected one.
pub fn tokens_match(submitted: &str, expected: &str) -> bool {
    !expected.is_empty() && submitted.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// A state-changing request must carry the session's CSRF token (form field or
/// `X-CSRF-Token`) and, if the browser sent an `Origin`, it must be the portal's.
pub fn check_csrf(
    headers: &HeaderMap,
    submitted: Option<&str>,
    expected: &str,
    public_origin: &str,
) -> Result<(), CsrfRejected> {
    if let Some(origin) = headers.get(ORIGIN)
        && origin.as_bytes() != public_origin.as_bytes()
    {
        return Err(CsrfRejected);
    }
    let header = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    match submitted.or(header) {
        Some(token) if tokens_match(token, expected) => Ok(()),
        _ => Err(CsrfRejected),
    }
}

/// A state-changing request without the session's CSRF token, or from another origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request did not carry this session's CSRF token, or came from another site")]
pub struct CsrfRejected;

/// A fresh random token for cookies and one-time values (43 characters).
pub fn random_token() -> String {
    portal_store::random_secret::<32>()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn https_cookies_are_host_prefixed_and_secure() {
        let names = CookieNames::new(true);
        let c = names.build(names.session, "t".into(), Some(cookie::time::Duration::hours(1)));
        assert!(c.starts_with("__Host-ird_session=t"), "{c}");
        for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
        let plain = CookieNames::new(false);
        assert!(!plain.build(plain.session, "t".into(), None).contains("Secure"));
    }

    #[test]
    fn csrf_needs_token_and_own_origin() {
        let mut h = HeaderMap::new();
        assert!(check_csrf(&h, Some("abc"), "abc", "http://p").is_ok());
        assert!(check_csrf(&h, Some("abd"), "abc", "http://p").is_err());
        assert!(check_csrf(&h, None, "abc", "http://p").is_err());
        h.insert(ORIGIN, HeaderValue::from_static("http://evil"));
        assert!(check_csrf(&h, Some("abc"), "abc", "http://p").is_err());
        h.insert(ORIGIN, HeaderValue::from_static("http://p"));
        h.insert("x-csrf-token", HeaderValue::from_static("abc"));
        assert!(check_csrf(&h, None, "abc", "http://p").is_ok());
    }

    #[test]
    fn cookie_value_finds_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("ird_session_x=1; ird_session=tok; lang=de"),
        );
        assert_eq!(cookie_value(&h, "ird_session"), Some("tok"));
        assert_eq!(cookie_value(&h, "nope"), None);
    }
}
