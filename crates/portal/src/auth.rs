//! Who is asking: the session cookie, the signed-in user extractor, and CSRF checks.
//!
//! Sessions live in the store; the cookie holds only a random token. Cookies are HttpOnly and
//! SameSite=Lax (Strict would drop the cookie on the redirect back from IServ); when the
//! public URL is https they are also Secure and carry the `__Host-` prefix.

use axum::Json;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, Path, State};
use cookie::{Cookie, SameSite};
use http::HeaderMap;
use http::header::{COOKIE, ORIGIN};
use http::request::Parts;
use portal_store::{AuditEvent, AuditKind, Role, Session, User};
use subtle::ConstantTimeEq as _;

use crate::{AppError, AppState};

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
    pub secure: bool,
}

impl CookieNames {
    pub fn new(https: bool) -> Self {
        if https {
            Self {
                session: "__Host-ird_session",
                login_csrf: "__Host-ird_login",
                oidc_pending: "__Host-ird_oidc",
                secure: true,
            }
        } else {
            Self {
                session: "ird_session",
                login_csrf: "ird_login",
                oidc_pending: "ird_oidc",
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

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        <CurrentUser as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await?
            .ok_or(AppError::Unauthorized)
    }
}

impl OptionalFromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        if let Some(cached) = parts.extensions.get::<CurrentUser>() {
            return Ok(Some(cached.clone()));
        }
        let Some(token) = cookie_value(&parts.headers, state.cookies.session) else {
            return Ok(None);
        };
        // Tokens are 43 characters; anything far longer is not ours and not worth a query.
        if token.len() > 128 {
            return Ok(None);
        }
        let found = state.store.live_session(token, state.config.session_idle()).await?;
        Ok(found.map(|(session, user)| {
            let current = CurrentUser { user, session };
            parts.extensions.insert(current.clone());
            current
        }))
    }
}

/// `POST /api/admin/users/{username}/end-sessions`: signs a user out everywhere (admins only,
/// CSRF token required). Answers `{"ended": n}`; 404 for an unknown user.
pub(crate) async fn end_user_sessions(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(username): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, AppError> {
    check_csrf(&headers, None, &me.session.csrf_token, &state.public_origin)?;
    if !me.is_admin() {
        return Err(AppError::AdminOnly);
    }
    let user = state
        .store
        .user_by_username(&username)
        .await?
        .ok_or(AppError::NotFound)?;
    let ended = state.store.delete_user_sessions(&user.id).await?;
    tracing::info!(admin = %me.user.username, username = %user.username, ended, "ended a user's sessions");
    let detail = format!("ended {ended} sessions");
    let event = AuditEvent::new(AuditKind::AdminAction, detail)
        .actor(&me.user.username)
        .user(&user.username);
    crate::admin::audit(&state, event).await;
    Ok(Json(serde_json::json!({ "username": user.username, "ended": ended })))
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
) -> Result<(), AppError> {
    if let Some(origin) = headers.get(ORIGIN)
        && origin.as_bytes() != public_origin.as_bytes()
    {
        return Err(AppError::Csrf);
    }
    let header = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    match submitted.or(header) {
        Some(token) if tokens_match(token, expected) => Ok(()),
        _ => Err(AppError::Csrf),
    }
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
