//! Requests to desktop hosts (`{label}.desktops.school.example`): every path there belongs to
//! that one desktop, except the portal's handover at [`ENTER_PATH`]. Nothing of the portal
//! is reachable on these hosts — no pages, no API, no portal cookie.
//!
//! Access needs the host's own cookie, made by redeeming a one-time ticket from the portal's
//! `/view/{id}` and bound to the portal session that asked for it (see
//! [`crate::auth::desktop_sessions`]). Requests from other sites are refused; WebSockets must
//! come from exactly this desktop's origin. Who may use a desktop: its owner, an administrator,
//! and a teacher whose offer to help the student accepted (`domain::help`), while that lasts.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts as _, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use desktop_proxy::{ForwardContext, Target, classify_upgrade};
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, REFERRER_POLICY, SET_COOKIE};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::Limited;

use crate::auth::cookie_value;
use crate::auth::desktop_sessions::TicketError;
use crate::i18n::Lang;
use crate::net::client_addr::ClientAddr;
use crate::net::desktop_origin::{DesktopOrigin, PREVIEW_LABEL, host_label};
use crate::state::AppState;
use crate::web::desktop::check_declared_length;
use crate::web::redirect::safe_path;

/// The handover: `GET /.ird/enter?ticket=…&to=/path` on the desktop's host.
pub(crate) const ENTER_PATH: &str = "/.ird/enter";
/// Paths under this prefix are the portal's on every desktop host; never forwarded.
const RESERVED_PREFIX: &str = "/.ird/";

/// Middleware in front of the whole portal: a request whose `Host` is a desktop host is
/// served here and never reaches the portal's routes.
pub(crate) async fn route_by_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(origins) = state.desktop_origins.clone() else {
        return next.run(req).await;
    };
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let Some(label) = host.and_then(|h| origins.label_in_host(h)).map(str::to_owned) else {
        return next.run(req).await;
    };
    if label == PREVIEW_LABEL {
        return crate::web::preview::serve(&state, req).await;
    }
    serve(&state, &origins, &label, req)
        .await
        .unwrap_or_else(|refusal| refusal.response(&state, &label))
}

/// Why a request to a desktop host was refused. Answers are plain text: nothing of the portal's
/// pages (scripts, styles, links with tokens) is ever served on a desktop's origin.
#[derive(Debug)]
enum Refusal {
    /// Unknown desktop, or one this user may not use.
    NotFound,
    /// No valid cookie for this host: open the desktop from the portal. Answered exactly
    /// like [`Refusal::NotFound`] (no oracle for which desktops run).
    NoSession,
    /// A ticket that is unknown, used, expired or for another desktop.
    Ticket,
    /// `Sec-Fetch-Site` says another site sent the browser here.
    OtherSite,
    /// A WebSocket from another origin.
    ForeignOrigin,
    /// Anything the portal's own error type says (body too large, desktop unreachable, …).
    App(crate::web::error::AppError),
}

impl Refusal {
    fn response(self, state: &AppState, label: &str) -> Response {
        let (status, key) = match &self {
            // One answer for "no such desktop", "not yours" and "no cookie (any more)": a
            // desktop host must not tell a prober which desktops run.
            Refusal::NotFound | Refusal::NoSession => (StatusCode::NOT_FOUND, "err_desktop_origin_session"),
            Refusal::Ticket => (StatusCode::FORBIDDEN, "err_desktop_ticket"),
            Refusal::OtherSite => (StatusCode::FORBIDDEN, "err_desktop_other_site"),
            Refusal::ForeignOrigin => (StatusCode::FORBIDDEN, "err_foreign_origin"),
            Refusal::App(e) => (e.status(), e.message_key()),
        };
        if let Refusal::App(e) = &self
            && status.is_server_error()
        {
            tracing::warn!(desktop = %label, error = %e, "desktop host request failed");
        }
        let lang = Lang::default();
        let text = format!(
            "{}\n\n{}: {}/\n",
            lang.t(key),
            lang.t("desktop_origin_portal_link"),
            state.public_origin
        );
        let mut resp = (status, text).into_response();
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Ok(v) = HeaderValue::from_str(&frame_ancestors(&state.public_origin)) {
            h.insert(CONTENT_SECURITY_POLICY, v);
        }
        resp
    }
}

impl From<crate::web::error::AppError> for Refusal {
    fn from(e: crate::web::error::AppError) -> Self {
        Refusal::App(e)
    }
}

fn frame_ancestors(portal_origin: &str) -> String {
    format!("frame-ancestors {portal_origin}")
}

/// The running desktop whose host label is `label`.
fn target_for_label(state: &AppState, label: &str) -> Option<Arc<Target>> {
    if let Some(t) = state.routes.get(label).filter(|t| host_label(&t.desktop_id) == label) {
        return Some(t);
    }
    // Ids that are no DNS label are found by their hashed label (rare: a scan is fine).
    state
        .routes
        .all()
        .into_iter()
        .find(|t| host_label(&t.desktop_id) == label)
}

async fn serve(state: &AppState, origins: &DesktopOrigin, label: &str, req: Request) -> Result<Response, Refusal> {
    let path = req.uri().path();
    if path == ENTER_PATH {
        return enter(state, origins, label, req).await;
    }
    if path.starts_with(RESERVED_PREFIX) {
        return Err(Refusal::NotFound);
    }
    // `same-site` too: in production every desktop shares the school's site, and one
    // student's desktop must not drive another's (the ticket navigation is the one way in).
    if matches!(sec_fetch_site(&req), Some("cross-site" | "same-site")) {
        return Err(Refusal::OtherSite);
    }
    let target = target_for_label(state, label).ok_or(Refusal::NotFound)?;
    let id = target.desktop_id.clone();
    let origin = origins.origin_of(&id);
    let ws = classify_upgrade(req.method(), req.version(), req.headers()).map_err(crate::web::error::AppError::from)?;
    if ws.as_ref().is_some_and(|ws| ws.origin != origin) {
        tracing::warn!(desktop = %id, "refused a WebSocket from another origin on a desktop host");
        return Err(Refusal::ForeignOrigin);
    }
    let cookie_name = state.cookies.desktop;
    let key = cookie_value(req.headers(), cookie_name)
        .filter(|v| v.len() <= 128)
        .map(str::to_owned)
        .ok_or(Refusal::NoSession)?;
    let (owner, stop) = state
        .desktop_sessions
        .cookie(&key)
        .await
        .map_err(crate::web::error::AppError::from)?
        .ok_or(Refusal::NoSession)?;
    if owner.desktop.as_deref() != Some(id.as_str()) {
        return Err(Refusal::NoSession);
    }
    let (_, user) = state
        .store
        .peek_session(&owner.session_id, state.config.session_idle())
        .await
        .map_err(crate::web::error::AppError::from)?
        .ok_or(Refusal::NoSession)?;
    // The owner, an administrator, or a helper the student accepted (noted, so ending the
    // help closes this at once).
    if !state.help.admit(&user, &owner.session_id, &target) {
        state.desktop_sessions.end(&owner);
        return Err(Refusal::NotFound);
    }
    check_declared_length(state, &req)?;
    let hold = crate::web::desktop::websocket_slot(state, &user.id, ws.is_some())?;
    let limit = state.config.proxy.max_body_bytes;
    let (mut parts, body) = req.into_parts();
    let client = ClientAddr::from_request_parts(&mut parts, state)
        .await
        .unwrap_or_else(|e| match e {});
    let ctx = ForwardContext {
        client_addr: client.socket_addr(),
        https: origins.scheme() == "https",
        host: parts.headers.get(HOST).cloned(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        websocket: ws,
        stop: Some(stop),
        hold,
    };
    let req = Request::from_parts(parts, Limited::new(body, limit));
    let mut resp = state
        .proxy
        .forward(&target, req, ctx)
        .await
        .map_err(crate::web::error::AppError::from)?
        .map(Body::new);
    // Only the portal may frame a desktop. Appended, so the desktop's own policy still holds.
    if let Ok(v) = HeaderValue::from_str(&frame_ancestors(&state.public_origin)) {
        resp.headers_mut().append(CONTENT_SECURITY_POLICY, v);
    }
    Ok(resp)
}

fn sec_fetch_site(req: &Request) -> Option<&str> {
    req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok())
}

/// The handover's query.
struct EnterQuery {
    ticket: Option<String>,
    to: Option<String>,
}

/// `GET /.ird/enter?ticket&to`: redeems the ticket, gives this host its cookie, and moves on
/// to `to` with a same-origin navigation (a meta refresh: no script needed, and the next
/// request is the desktop's own, not the other site's).
async fn enter(state: &AppState, origins: &DesktopOrigin, label: &str, req: Request) -> Result<Response, Refusal> {
    if req.method() != Method::GET {
        return Err(Refusal::NotFound);
    }
    let q = enter_query(req.uri().query());
    let ticket = q
        .ticket
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .ok_or(Refusal::Ticket)?;
    let to = safe_path(q.to.as_deref()).to_owned();
    let target = target_for_label(state, label).ok_or(Refusal::NotFound)?;
    let id = &target.desktop_id;
    let session_id = state.desktop_sessions.redeem(&ticket, id).await.map_err(|e| match e {
        TicketError::Store(e) => Refusal::App(e.into()),
        e => {
            tracing::info!(desktop = %id, reason = %e, "refused a desktop ticket");
            Refusal::Ticket
        }
    })?;
    let (_, user) = state
        .store
        .peek_session(&session_id, state.config.session_idle())
        .await
        .map_err(crate::web::error::AppError::from)?
        .ok_or(Refusal::Ticket)?;
    if !state.help.admit(&user, &session_id, &target) {
        return Err(Refusal::Ticket);
    }
    let key = state
        .desktop_sessions
        .bind_cookie(&session_id, id)
        .await
        .map_err(|e| match e {
            // Signed out in the meantime.
            portal_store::StoreError::NotFound => Refusal::Ticket,
            e => Refusal::App(e.into()),
        })?;
    tracing::info!(desktop = %id, username = %user.username, "entered a desktop origin");
    let cookie = desktop_cookie(state.cookies.desktop, &key, origins);
    let escaped = html_attr_escape(&to);
    let body = format!(
        "<!doctype html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={escaped}\"><title>…</title>"
    );
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The ticket is in this page's URL: never send it on as a Referer.
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "default-src 'none'; {}",
        frame_ancestors(&state.public_origin)
    )) {
        h.insert(CONTENT_SECURITY_POLICY, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(SET_COOKIE, v);
    }
    Ok(resp)
}

/// The desktop host's cookie: host-only (never `Domain=`), HttpOnly. Framed by the portal it
/// is a third-party cookie in dev (`127.0.0.1` frames `*.localhost`), so it is
/// `SameSite=None; Secure; Partitioned` wherever the browser allows Secure (https and
/// `*.localhost`); a plain-http lab host gets `SameSite=Lax` and works where portal and
/// desktops share a site.
fn desktop_cookie(name: &str, value: &str, origins: &DesktopOrigin) -> String {
    let secure_context = origins.scheme() == "https" || origins.is_localhost();
    if secure_context {
        format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=None; Partitioned")
    } else {
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax")
    }
}

fn enter_query(query: Option<&str>) -> EnterQuery {
    let mut q = EnterQuery { ticket: None, to: None };
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "ticket" => q.ticket = Some(v.into_owned()),
            "to" => q.to = Some(v.into_owned()),
            _ => {}
        }
    }
    q
}

/// HTML attribute escaping for the refresh URL (already a safe path; this keeps it so).
fn html_attr_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
