//! Sign-in with a local account, sign-out, and the brake on password guessing.

use std::time::Duration;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use portal_store::{AuditEvent, AuditKind, User};
use serde::Deserialize;

use crate::auth::{CurrentUser, cookie_value, random_token};
use crate::domain::audit;
use crate::i18n::Lang;
use crate::net::client_addr::ClientAddr;
use crate::state::AppState;
use crate::telemetry::metrics::{SignInMethod, SignInOutcome};
use crate::web::error::AppError;
use crate::web::pages::{LoginPage, html};
use iserv_oidc::OidcError;

#[derive(Deserialize)]
pub(crate) struct NextParam {
    next: Option<String>,
}

/// Only paths on the portal (see [`crate::web::redirect::safe_path`]).
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    crate::web::redirect::safe_path(next)
}

/// `GET /login`: the form, with a fresh double-submit CSRF token.
pub(crate) async fn form(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    lang: Lang,
    Query(q): Query<NextParam>,
) -> Result<Response, AppError> {
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Ok(Redirect::to(next).into_response());
    }
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
    next: Option<String>,
}

/// `POST /login`: checks the form, the password and the brake; 303 with a session cookie.
/// The form's double-submit token was checked before, by `web::csrf` (`Expect::SignInCookie`).
pub(crate) async fn submit(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    lang: Lang,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, AppError> {
    if !state.config.local_login {
        return Err(OidcError::LocalLoginOff.into());
    }
    let Form(form) = form.map_err(|e| AppError::BadRequest(e.body_text()))?;
    // A failed attempt shows the form again with the same token.
    let token = cookie_value(&headers, state.cookies.login_csrf).unwrap_or("");
    let username = form.username.trim().to_lowercase();
    if username.is_empty() || form.password.is_empty() {
        return Err(AppError::BadRequest("username and password are required".into()));
    }
    if username.len() > 64 || form.password.len() > 1024 {
        return Err(AppError::BadCredentials);
    }
    let next = safe_next(form.next.as_deref());
    let retry = |status: StatusCode, message: String| -> Result<Response, AppError> {
        let page = LoginPage {
            lang,
            csrf_token: token,
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
        let who = record_failure(&state, &client, &username, "refused: too many failures").await;
        tracing::info!(username = %who, ip = %client.ip, wait_secs = wait.as_secs(), "sign-in refused: too many failures");
        let message = if wait < Duration::from_secs(60) {
            lang.t_with("login_wait_seconds", &[("seconds", wait.as_secs().max(1))])
        } else {
            lang.t_with("login_wait_minutes", &[("minutes", wait.as_secs().div_ceil(60))])
        };
        let mut resp = retry(StatusCode::TOO_MANY_REQUESTS, message)?;
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, wait.as_secs().max(1).into());
        return Ok(resp);
    }
    // Each check holds ~19 MiB for a moment: a crowd of sign-ins is turned away, not queued.
    let Some(slot) = state.password_checks.slot().await else {
        state.metrics.sign_in(SignInMethod::Local, SignInOutcome::Blocked);
        tracing::warn!(ip = %client.ip, "sign-in turned away: every password check slot is busy");
        let mut resp = retry(StatusCode::SERVICE_UNAVAILABLE, lang.t("login_busy").to_owned())?;
        resp.headers_mut().insert(http::header::RETRY_AFTER, 2.into());
        return Ok(resp);
    };
    let verified = state.store.verify_password(&username, &form.password).await;
    drop(slot);
    let Some(user) = verified? else {
        state.login_limiter.record_failure(&username, client.ip);
        state.metrics.sign_in(SignInMethod::Local, SignInOutcome::Failure);
        let who = record_failure(&state, &client, &username, "wrong username or password").await;
        tracing::info!(username = %who, ip = %client.ip, "sign-in failed");
        return retry(StatusCode::UNAUTHORIZED, lang.t("err_bad_credentials").to_owned());
    };
    state.login_limiter.succeeded(&username, client.ip);
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

/// What a failed sign-in records of the name typed: an account's name as it is, but of a
/// name no account has only a short hash, since that is often a password typed into the
/// wrong field.
enum TypedName {
    Account(String),
    Unknown(String),
}

impl TypedName {
    fn audit(&self, event: AuditEvent) -> AuditEvent {
        match self {
            TypedName::Account(name) => event.user(name),
            TypedName::Unknown(_) => {
                let detail = format!("{}, unknown username {self}", event.detail);
                AuditEvent { detail, ..event }
            }
        }
    }
}

impl std::fmt::Display for TypedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypedName::Account(name) => write!(f, "{name:?}"),
            TypedName::Unknown(hash) => write!(f, "(unknown, sha256 {hash})"),
        }
    }
}

/// Audits a failed or refused sign-in (a few per address and minute, see
/// [`crate::domain::audit::AnonymousAudit`]); returns what may be logged of the name typed.
async fn record_failure(state: &AppState, client: &ClientAddr, typed: &str, why: &str) -> TypedName {
    let who = typed_name(state, typed).await;
    let detail = format!("password, {why} (from {})", client.ip);
    let event = who.audit(AuditEvent::new(AuditKind::SignInFailed, detail));
    state.anonymous_audit.record(&state.store, client.ip, event).await;
    who
}

async fn typed_name(state: &AppState, typed: &str) -> TypedName {
    match state.store.user_by_username(typed).await {
        Ok(Some(user)) => TypedName::Account(user.username),
        _ => {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(typed.as_bytes());
            TypedName::Unknown(digest.iter().take(4).map(|b| format!("{b:02x}")).collect())
        }
    }
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
    audit::record(
        &state.store,
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

/// `POST /logout`: ends the session in the store, not just in the browser.
pub(crate) async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(token) = cookie_value(&headers, state.cookies.session) {
        state.store.delete_session(token).await?;
    }
    let who = &user.user.username;
    audit::record(
        &state.store,
        AuditEvent::new(AuditKind::SignOut, "").actor(who).user(who),
    )
    .await;
    state.desktop_sessions.end_session(&user.session.id);
    let clear = state.cookies.build(state.cookies.session, String::new(), None);
    let mut resp = ([(SET_COOKIE, clear)], Redirect::to("/login")).into_response();
    // On a shared school PC nothing of this user's may stay behind for the next one.
    resp.headers_mut().insert(
        HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cache\", \"storage\""),
    );
    Ok(resp)
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
}
