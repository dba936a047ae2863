//! The two routes of IServ sign-in: `GET /auth/login` sends the browser to IServ,
//! `GET /auth/callback` takes it back, checks everything and starts a session.

use axum::extract::{Query, State};
use axum::response::{IntoResponse as _, Redirect, Response};
use http::HeaderMap;
use http::header::SET_COOKIE;
use portal_store::{AuditEvent, AuditKind, StoreError};
use serde::Deserialize;

use crate::auth::random_token;
use crate::auth::{CurrentUser, cookie_value};
use crate::net::client_addr::ClientAddr;
use crate::state::AppState;
use crate::telemetry::metrics::{SignInMethod, SignInOutcome};
use crate::web::error::AppError;
use crate::web::signin::local::{safe_next, signed_in};
use iserv_oidc::{OidcError, PENDING_TTL};

#[derive(Deserialize)]
pub(crate) struct LoginParams {
    next: Option<String>,
}

/// `GET /auth/login?next=/path`: remembers the sign-in and redirects to IServ.
pub(crate) async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    user: Option<CurrentUser>,
    headers: HeaderMap,
    Query(q): Query<LoginParams>,
) -> Result<Response, AppError> {
    let oidc = state.oidc.clone().ok_or(OidcError::NotConfigured)?;
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Ok(Redirect::to(next).into_response());
    }
    // Two tabs signing in at once share the browser's binding, so neither locks the other out.
    let binding = cookie_value(&headers, state.cookies.oidc_pending)
        .filter(|b| b.len() == 43 && b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
        .map_or_else(random_token, str::to_owned);
    // Counted per client (IPv6: per /64), so a flood cannot push out others' sign-ins.
    let source = crate::net::client_addr::client_group(client.ip).to_string();
    let url = oidc.begin(binding.clone(), next.to_owned(), source).await?;
    let max_age = cookie::time::Duration::seconds(i64::try_from(PENDING_TTL.as_secs()).unwrap_or(600));
    let cookie = state.cookies.build(state.cookies.oidc_pending, binding, Some(max_age));
    // 303 like every other redirect of the portal; the browser follows it with a GET.
    Ok(([(SET_COOKIE, cookie)], Redirect::to(url.as_str())).into_response())
}

#[derive(Deserialize)]
pub(crate) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback?code&state` (or `?error=…&state`): finishes the sign-in.
pub(crate) async fn callback(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Query(q): Query<CallbackParams>,
) -> Result<Response, AppError> {
    let result = finish(&state, &headers, q).await;
    if let Err(e) = &result {
        tracing::warn!(error = %e, ip = %client.ip, "sign-in with IServ failed");
        state.metrics.sign_in(SignInMethod::Oidc, outcome(e));
        let detail = format!("IServ: {e} (from {})", client.ip);
        // Anyone can call this URL: at most a few entries per address and minute.
        state
            .anonymous_audit
            .record(
                &state.store,
                client.ip,
                AuditEvent::new(AuditKind::SignInFailed, detail),
            )
            .await;
    }
    let (user, return_to) = result?;
    tracing::info!(username = %user.username, role = %user.role, ip = %client.ip, "signed in with IServ");
    let how = format!("IServ as {} (from {})", user.role, client.ip);
    // The pending cookie stays until it expires: another tab's sign-in may still need it, and
    // it grants nothing by itself.
    signed_in(&state, &user, SignInMethod::Oidc, how, &return_to).await
}

/// The user's doing (or the provider saying no) versus something broken.
fn outcome(e: &AppError) -> SignInOutcome {
    match e {
        AppError::Oidc(
            OidcError::Denied
            | OidcError::NotAllowed
            | OidcError::StateUnknown
            | OidcError::OtherBrowser
            | OidcError::TokenRefused(_)
            | OidcError::Token(_)
            | OidcError::Claims(_)
            | OidcError::LinkNeedsAdmin(_)
            | OidcError::AccountDeleted(_),
        ) => SignInOutcome::Failure,
        _ => SignInOutcome::Error,
    }
}

async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    q: CallbackParams,
) -> Result<(portal_store::User, String), AppError> {
    let oidc = state.oidc.clone().ok_or(OidcError::NotConfigured)?;
    let binding = cookie_value(headers, state.cookies.oidc_pending);
    let (identity, return_to) = oidc
        .complete(
            q.state.as_deref().unwrap_or(""),
            binding,
            q.error.as_deref(),
            q.code.as_deref(),
        )
        .await?;
    let external = identity.to_external_user(oidc.config());
    let (user, linked) = state.store.sign_in_external(&external).await.map_err(|e| match e {
        StoreError::Invalid(m) => AppError::from(OidcError::BadUsername(m)),
        StoreError::Conflict(m) => AppError::from(OidcError::UsernameTaken(m)),
        StoreError::LinkNeedsAdmin(name) => AppError::from(OidcError::LinkNeedsAdmin(name)),
        StoreError::AccountDeleted(name, _) => AppError::from(OidcError::AccountDeleted(name)),
        other => AppError::Store(other),
    })?;
    if let Some(linked) = linked {
        let how = match &linked.allowed_by {
            Some(admin) => format!("as allowed by administrator {admin}; its local password was removed"),
            None => "automatically (an account without password, prepared ahead)".to_owned(),
        };
        tracing::info!(username = %user.username, subject = %external.subject, allowed_by = ?linked.allowed_by, "linked a local account to IServ");
        let event = AuditEvent::new(
            AuditKind::UserChanged,
            format!("local account linked to IServ account {} {how}", external.subject),
        )
        .actor(linked.allowed_by.as_deref().unwrap_or(&user.username))
        .user(&user.username);
        crate::domain::audit::record(&state.store, event).await;
    }
    Ok((user, return_to))
}
