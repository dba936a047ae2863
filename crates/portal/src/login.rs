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
use rand::RngCore as _;
use serde::Deserialize;

use crate::auth::{CurrentUser, check_csrf, cookie_value, tokens_match};
use crate::client_addr::ClientAddr;
use crate::i18n::Lang;
use crate::metrics::{SignInMethod, SignInOutcome};
use crate::pages::{LoginPage, html};
use crate::{AppError, AppState};

/// Failed attempts allowed per (username, address) within [`LOCKOUT`].
const MAX_FAILURES: u32 = 5;
const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Beyond this many tracked keys the oldest entries are dropped, so a flood of made-up
/// usernames cannot grow memory without bound.
const MAX_TRACKED: usize = 10_000;

/// Counts failed sign-ins per (username, client address).
#[derive(Default)]
pub(crate) struct LoginLimiter {
    failures: Mutex<HashMap<(String, IpAddr), (u32, Instant)>>,
}

impl LoginLimiter {
    fn blocked(&self, username: &str, ip: IpAddr) -> bool {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(username.to_owned(), ip))
            .is_some_and(|(n, since)| *n >= MAX_FAILURES && since.elapsed() < LOCKOUT)
    }

    fn record_failure(&self, username: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, since)| since.elapsed() < LOCKOUT);
        }
        if map.len() >= MAX_TRACKED {
            return;
        }
        let entry = map.entry((username.to_owned(), ip)).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= LOCKOUT {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn clear(&self, username: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(username.to_owned(), ip));
    }
}

#[derive(Deserialize)]
pub(crate) struct NextParam {
    next: Option<String>,
}

/// Only same-site paths; `//evil` and `/\evil` would leave the portal.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") && n.len() <= 2048 => n,
        _ => "/",
    }
}

fn random_token() -> String {
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
    let retry = |status: StatusCode, key: &'static str| -> Result<Response, AppError> {
        let page = LoginPage {
            lang,
            csrf_token: expected,
            next,
            username: &username,
            error: Some(lang.t(key)),
        };
        Ok((status, html(&page)?).into_response())
    };
    if state.login_limiter.blocked(&username, client.ip) {
        state.metrics.sign_in(SignInMethod::Local, SignInOutcome::Blocked);
        return retry(StatusCode::TOO_MANY_REQUESTS, "err_too_many_attempts");
    }
    let Some(user) = state.store.verify_password(&username, &form.password).await? else {
        state.login_limiter.record_failure(&username, client.ip);
        tracing::info!(%username, ip = %client.ip, "sign-in failed");
        state.metrics.sign_in(SignInMethod::Local, SignInOutcome::Failure);
        return retry(StatusCode::UNAUTHORIZED, "err_bad_credentials");
    };
    state.login_limiter.clear(&username, client.ip);
    let ttl = Duration::from_secs(state.config.session_ttl_hours * 3600);
    let new = state.store.create_session(&user.id, ttl).await?;
    tracing::info!(username = %user.username, ip = %client.ip, "signed in");
    state.metrics.sign_in(SignInMethod::Local, SignInOutcome::Success);
    let max_age = cookie::time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    let session_cookie = state.cookies.build(state.cookies.session, new.token, Some(max_age));
    let clear_login = state.cookies.build(state.cookies.login_csrf, String::new(), None);
    let mut resp = Redirect::to(next).into_response();
    resp.headers_mut().append(
        SET_COOKIE,
        session_cookie
            .parse()
            .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?,
    );
    resp.headers_mut().append(
        SET_COOKIE,
        clear_login
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
    let clear = state.cookies.build(state.cookies.session, String::new(), None);
    Ok(([(SET_COOKIE, clear)], Redirect::to("/login")).into_response())
}

#[cfg(test)]
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
    fn limiter_blocks_after_five_failures() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([127, 0, 0, 1]);
        for _ in 0..MAX_FAILURES {
            assert!(!l.blocked("alice", ip));
            l.record_failure("alice", ip);
        }
        assert!(l.blocked("alice", ip));
        assert!(!l.blocked("bob", ip));
        l.clear("alice", ip);
        assert!(!l.blocked("alice", ip));
    }
}
