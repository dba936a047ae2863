//! Sign-in with a local account, sign-out, and the brake on password guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};
use portal_store::{AuditEvent, AuditKind, User};
use rand::RngCore as _;
use serde::Deserialize;

use crate::admin::audit;
use crate::auth::{CurrentUser, check_csrf, cookie_value, tokens_match};
use crate::client_addr::ClientAddr;
use crate::i18n::Lang;
use crate::metrics::{SignInMethod, SignInOutcome};
use crate::oidc::OidcError;
use crate::pages::{LoginPage, html};
use crate::{AppError, AppState};

/// Failed attempts allowed within [`LOCKOUT`]: per account and address, per account from any
/// address (slow guessing spread over many machines), and per address for any account (one
/// password tried on many accounts). The last is generous because a whole school may share
/// one address behind its router.
const MAX_PAIR_FAILURES: u32 = 5;
const MAX_ACCOUNT_FAILURES: u32 = 10;
const MAX_ADDRESS_FAILURES: u32 = 50;
const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Beyond this many tracked keys the oldest entries are dropped, so a flood of made-up
/// usernames cannot grow memory without bound.
const MAX_TRACKED: usize = 30_000;

/// What failures are counted for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, IpAddr),
    Account(String),
    Address(IpAddr),
}

impl Key {
    fn all(username: &str, ip: IpAddr) -> [Key; 3] {
        [
            Key::Pair(username.to_owned(), ip),
            Key::Account(username.to_owned()),
            Key::Address(ip),
        ]
    }

    fn limit(&self) -> u32 {
        match self {
            Key::Pair(..) => MAX_PAIR_FAILURES,
            Key::Account(_) => MAX_ACCOUNT_FAILURES,
            Key::Address(_) => MAX_ADDRESS_FAILURES,
        }
    }
}

/// Counts failed sign-ins per account, per client address and per pair of both.
#[derive(Default)]
pub(crate) struct LoginLimiter {
    failures: Mutex<HashMap<Key, (u32, Instant)>>,
}

impl LoginLimiter {
    /// How long until `username` may try again from `ip`; `None` if it may now.
    fn blocked(&self, username: &str, ip: IpAddr) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Key::all(username, ip)
            .iter()
            .filter_map(|key| {
                let (n, since) = map.get(key)?;
                (*n >= key.limit() && since.elapsed() < LOCKOUT).then(|| LOCKOUT.saturating_sub(since.elapsed()))
            })
            .max()
    }

    fn record_failure(&self, username: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() + 3 > MAX_TRACKED {
            map.retain(|_, (_, since)| since.elapsed() < LOCKOUT);
        }
        if map.len() + 3 > MAX_TRACKED {
            return;
        }
        for key in Key::all(username, ip) {
            let entry = map.entry(key).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= LOCKOUT {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
    }

    /// After a successful sign-in; the address keeps its count (others behind it may guess).
    fn clear(&self, username: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&Key::Pair(username.to_owned(), ip));
        map.remove(&Key::Account(username.to_owned()));
    }
}

#[derive(Deserialize)]
pub(crate) struct NextParam {
    next: Option<String>,
}

/// Only same-site paths; `//evil` and `/\evil` would leave the portal.
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") && n.len() <= 2048 => n,
        _ => "/",
    }
}

pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `GET /login`: the form, with a fresh double-submit CSRF token.
pub(crate) async fn form(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    headers: HeaderMap,
    Query(q): Query<NextParam>,
) -> Result<Response, AppError> {
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Ok(Redirect::to(next).into_response());
    }
    let lang = Lang::from_headers(&headers);
    let token = random_token();
    let page = LoginPage {
        lang,
        csrf_token: &token,
        next,
        username: "",
        error: None,
        oidc: state.oidc.is_some(),
        local: state.config.local_login,
    };
    let cookie = state.cookies.build(
        state.cookies.login_csrf,
        token.clone(),
        Some(cookie::time::Duration::hours(2)),
    );
    Ok(([(SET_COOKIE, cookie)], html(&page)?).into_response())
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

/// `POST /login`: checks the form, the password and the brake; 303 with a session cookie.
pub(crate) async fn submit(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, AppError> {
    if !state.config.local_login {
        return Err(OidcError::LocalLoginOff.into());
    }
    let Form(form) = form.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let expected = cookie_value(&headers, state.cookies.login_csrf).unwrap_or("");
    if !tokens_match(&form.csrf_token, expected) {
        return Err(AppError::Csrf);
    }
    check_csrf(&headers, Some(&form.csrf_token), expected, &state.public_origin)?;
    let username = form.username.trim().to_lowercase();
    if username.is_empty() || form.password.is_empty() {
        return Err(AppError::BadRequest("username and password are required".into()));
    }
    if username.len() > 64 || form.password.len() > 1024 {
        return Err(AppError::BadCredentials);
    }
    let lang = Lang::from_headers(&headers);
    let next = safe_next(form.next.as_deref());
    let retry = |status: StatusCode, message: String| -> Result<Response, AppError> {
        let page = LoginPage {
            lang,
            csrf_token: expected,
            next,
            username: &username,
            error: Some(message),
            oidc: state.oidc.is_some(),
            local: true,
        };
        Ok((status, html(&page)?).into_response())
    };
    if let Some(wait) = state.login_limiter.blocked(&username, client.ip) {
        state.metrics.sign_in(SignInMethod::Local, SignInOutcome::Blocked);
        let detail = format!("password, refused: too many failures (from {})", client.ip);
        audit(&state, AuditEvent::new(AuditKind::SignInFailed, detail).user(&username)).await;
        tracing::info!(%username, ip = %client.ip, wait_secs = wait.as_secs(), "sign-in refused: too many failures");
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let message = lang.t("login_wait_minutes").replace("{minutes}", &minutes.to_string());
        let mut resp = retry(StatusCode::TOO_MANY_REQUESTS, message)?;
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, wait.as_secs().max(1).into());
        return Ok(resp);
    }
    let Some(user) = state.store.verify_password(&username, &form.password).await? else {
        state.login_limiter.record_failure(&username, client.ip);
        tracing::info!(%username, ip = %client.ip, "sign-in failed");
        state.metrics.sign_in(SignInMethod::Local, SignInOutcome::Failure);
        let detail = format!("password, wrong username or password (from {})", client.ip);
        audit(&state, AuditEvent::new(AuditKind::SignInFailed, detail).user(&username)).await;
        return retry(StatusCode::UNAUTHORIZED, lang.t("err_bad_credentials").to_owned());
    };
    state.login_limiter.clear(&username, client.ip);
    tracing::info!(username = %user.username, ip = %client.ip, "signed in");
    let how = format!("password (from {})", client.ip);
    let mut resp = signed_in(&state, &user, SignInMethod::Local, how, next).await?;
    let clear_login = state.cookies.build(state.cookies.login_csrf, String::new(), None);
    resp.headers_mut().append(
        SET_COOKIE,
        clear_login
            .parse()
            .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?,
    );
    Ok(resp)
}

/// A new session for `user` (a new id at every sign-in, so a planted cookie is worthless),
/// its cookie, and a 303 to `next`.
/// A successful sign-in by either method: counted, audited (`how`: the method and the
/// client's address), then a new session that continues at `next`.
pub(crate) async fn signed_in(
    state: &AppState,
    user: &User,
    method: SignInMethod,
    how: String,
    next: &str,
) -> Result<Response, AppError> {
    state.metrics.sign_in(method, SignInOutcome::Success);
    audit(
        state,
        AuditEvent::new(AuditKind::SignIn, how)
            .actor(&user.username)
            .user(&user.username),
    )
    .await;
    start_session(state, user, next).await
}

async fn start_session(state: &AppState, user: &User, next: &str) -> Result<Response, AppError> {
    let ttl = state.config.session_ttl();
    let new = state.store.create_session(&user.id, ttl).await?;
    let max_age = cookie::time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    let session_cookie = state.cookies.build(state.cookies.session, new.token, Some(max_age));
    let mut resp = Redirect::to(next).into_response();
    resp.headers_mut().append(
        SET_COOKIE,
        session_cookie
            .parse()
            .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?,
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    csrf_token: Option<String>,
}

/// `POST /logout`: ends the session in the store, not just in the browser.
pub(crate) async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Result<Response, AppError> {
    let submitted = form.ok().and_then(|Form(f)| f.csrf_token);
    check_csrf(
        &headers,
        submitted.as_deref(),
        &user.session.csrf_token,
        &state.public_origin,
    )?;
    if let Some(token) = cookie_value(&headers, state.cookies.session) {
        state.store.delete_session(token).await?;
    }
    let who = &user.user.username;
    audit(&state, AuditEvent::new(AuditKind::SignOut, "").actor(who).user(who)).await;
    let clear = state.cookies.build(state.cookies.session, String::new(), None);
    Ok(([(SET_COOKIE, clear)], Redirect::to("/login")).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_portal() {
        assert_eq!(safe_next(Some("/desktop/a/")), "/desktop/a/");
        for evil in ["//evil.example", "/\\evil", "https://evil.example", "javascript:x"] {
            assert_eq!(safe_next(Some(evil)), "/");
        }
    }

    #[test]
    fn limiter_blocks_the_pair_after_five_failures() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([127, 0, 0, 1]);
        for _ in 0..MAX_PAIR_FAILURES {
            assert!(l.blocked("alice", ip).is_none());
            l.record_failure("alice", ip);
        }
        let wait = l.blocked("alice", ip).expect("blocked");
        assert!(wait > Duration::from_secs(14 * 60) && wait <= LOCKOUT, "{wait:?}");
        assert!(l.blocked("bob", ip).is_none());
        assert!(l.blocked("alice", IpAddr::from([10, 0, 0, 1])).is_none());
        l.clear("alice", ip);
        assert!(l.blocked("alice", ip).is_none());
    }

    #[test]
    fn limiter_blocks_an_account_guessed_from_many_addresses() {
        let l = LoginLimiter::default();
        for i in 0..MAX_ACCOUNT_FAILURES {
            l.record_failure("alice", IpAddr::from([10, 0, 0, u8::try_from(i).unwrap()]));
        }
        assert!(l.blocked("alice", IpAddr::from([192, 168, 1, 1])).is_some());
        assert!(l.blocked("bob", IpAddr::from([192, 168, 1, 1])).is_none());
    }

    #[test]
    fn limiter_blocks_an_address_trying_many_accounts() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 9, 8, 7]);
        for i in 0..MAX_ADDRESS_FAILURES {
            l.record_failure(&format!("user{i}"), ip);
        }
        assert!(l.blocked("someone-else", ip).is_some());
        assert!(l.blocked("someone-else", IpAddr::from([10, 9, 8, 6])).is_none());
    }
}
