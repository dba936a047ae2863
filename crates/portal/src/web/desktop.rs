//! `/desktop/{id}/…` and `/websockify`: access checks, then the desktop proxy.
//!
//! The URL only chooses WHICH desktop; whether the signed-in user may use it is always
//! decided here, against the routing table — never from a Referer, query or cookie alone.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use desktop_proxy::{ForwardContext, Target, classify_upgrade};
use http::header::{CONTENT_LENGTH, HOST, REFERER};
use http_body_util::Limited;

use crate::auth::CurrentUser;
use crate::auth::desktop_sessions::Owner;
use crate::domain::access::owns_desktop;
pub(crate) use crate::domain::lifecycle::launch_url;
use crate::net::client_addr::ClientAddr;
use crate::state::AppState;
use crate::web::desktop_host::ENTER_PATH;
use crate::web::error::AppError;

/// Splits `/desktop/{id}/rest` (raw, undecoded) into the id and the desktop-side path.
/// Public only for the fuzz targets (`crates/fuzz-targets`).
#[doc(hidden)]
pub fn split_desktop_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/desktop/")?;
    match rest.find('/') {
        Some(i) => Some((&rest[..i], &rest[i..])),
        None => Some((rest, "")),
    }
}

/// `GET /desktop/{id}` → the launch URL.
pub(crate) async fn bare(req: Request) -> Result<Response, AppError> {
    let (id, _) = split_desktop_path(req.uri().path()).ok_or(AppError::NotFound)?;
    Ok(Redirect::permanent(&launch_url(id)).into_response())
}

/// `/desktop/{id}/…`, any method, WebSocket or not.
pub(crate) async fn proxy_path(
    State(state): State<AppState>,
    client: ClientAddr,
    user: Option<CurrentUser>,
    req: Request,
) -> Result<Response, AppError> {
    let (id, rest) = split_desktop_path(req.uri().path()).ok_or(AppError::NotFound)?;
    let (id, rest) = (id.to_owned(), rest.to_owned());
    forward(&state, client.socket_addr(), user, &id, rest, req).await
}

/// `/websockify` at the root, for unmodified Kasm clients: the desktop comes from the
/// Referer (`/desktop/{id}/…`), else the session's current desktop, else 404.
pub(crate) async fn root_websockify(
    State(state): State<AppState>,
    client: ClientAddr,
    user: Option<CurrentUser>,
    req: Request,
) -> Result<Response, AppError> {
    let from_referer = req
        .headers()
        .get(REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .and_then(|u| split_desktop_path(u.path()).map(|(id, _)| id.to_owned()))
        .filter(|id| !id.is_empty());
    let (signed_in, _) = check_request(&state, user.as_ref(), &req)?;
    if state.desktop_origins.is_some() {
        // Each desktop opens `/websockify` on its own origin; nothing to guess here.
        return Err(AppError::DesktopOnOwnOrigin(
            state
                .config
                .desktop_origins()
                .map(|o| o.to_string())
                .unwrap_or_default(),
        ));
    }
    let id = match from_referer {
        Some(id) => id,
        None => signed_in
            .session
            .current_desktop
            .clone()
            .ok_or(AppError::NoDesktopSelected)?,
    };
    forward(&state, client.socket_addr(), user, &id, "/websockify".to_owned(), req).await
}

/// Checks that need no target: the upgrade's shape, its Origin, and a signed-in user.
/// Runs before any upstream connection is made.
fn check_request<'a>(
    state: &AppState,
    user: Option<&'a CurrentUser>,
    req: &Request,
) -> Result<(&'a CurrentUser, Option<desktop_proxy::WebSocketRequest>), AppError> {
    let ws = classify_upgrade(req.method(), req.version(), req.headers())?;
    if let Some(ws) = &ws
        && ws.origin != state.public_origin
    {
        return Err(AppError::ForeignOrigin(ws.origin.clone()));
    }
    let user = user.ok_or(AppError::Unauthorized)?;
    check_declared_length(state, req)?;
    Ok((user, ws))
}

/// A body declared larger than `proxy.max_body_bytes` is refused before anything is forwarded
/// (one that only turns out larger is cut off by the limited body).
pub(crate) fn check_declared_length(state: &AppState, req: &Request) -> Result<(), AppError> {
    let limit = state.config.proxy.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(AppError::TooLarge { limit });
    }
    Ok(())
}

/// Whether `user` may use `target`: its owners, its groups, and admins.
pub(crate) fn may_use(user: &CurrentUser, target: &Target) -> bool {
    crate::domain::access::may_use_desktop(&user.user, target)
}

async fn forward(
    state: &AppState,
    client: SocketAddr,
    user: Option<CurrentUser>,
    id: &str,
    rest: String,
    req: Request,
) -> Result<Response, AppError> {
    let (user, ws) = check_request(state, user.as_ref(), &req)?;
    let target = state
        .routes
        .get(id)
        .ok_or_else(|| AppError::DesktopNotFound(id.to_owned()))?;
    if !may_use(user, &target) {
        tracing::warn!(desktop = %id, username = %user.user.username, ip = %client.ip(), "refused access to another user's desktop");
        return Err(AppError::ForbiddenDesktop);
    }
    let path = if rest.is_empty() { "/".to_owned() } else { rest };
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    if let Some(origins) = &state.desktop_origins {
        // Desktop content never runs on the portal's origin: bookmarks and scripts with a
        // portal session are sent on to the desktop's own origin; WebSockets are refused.
        let origin = origins.origin_of(id);
        if ws.is_some() || !matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
            return Err(AppError::DesktopOnOwnOrigin(origin));
        }
        return Ok(Redirect::to(&handover_url(state, &user.session.id, id, &path_and_query).await?).into_response());
    }
    if !owns_desktop(&user.user, &target) {
        // On the portal's origin a desktop's page would act as whoever views it.
        tracing::warn!(desktop = %id, username = %user.user.username, "refused a desktop on the portal's origin to someone not its owner");
        return Err(AppError::OwnerOnly);
    }
    let page_load = ws.is_none()
        && req.method() == http::Method::GET
        && matches!(
            path_and_query.split('?').next(),
            Some("/" | "/index.html" | "/vnc.html")
        );
    if page_load && user.session.current_desktop.as_deref() != Some(id) {
        state.store.set_current_desktop(&user.session.id, Some(id)).await?;
    }
    let hold = websocket_slot(state, &user.user.id, ws.is_some())?;
    let stop = state.desktop_sessions.stop_signal(Owner {
        session_id: user.session.id.clone(),
        desktop: Some(id.to_owned()),
    });
    let ctx = ForwardContext {
        client_addr: client,
        https: state.https,
        host: req.headers().get(HOST).cloned(),
        path_and_query,
        websocket: ws,
        stop: Some(stop),
        hold,
    };
    let limit = state.config.proxy.max_body_bytes;
    let req = req.map(|b| Limited::new(b, limit));
    let resp = state.proxy.forward(&target, req, ctx).await?;
    Ok(resp.map(Body::new))
}

/// A slot among the user's open desktop WebSockets, held by the relay; `None` for plain
/// requests.
pub(crate) fn websocket_slot(
    state: &AppState,
    user_id: &str,
    websocket: bool,
) -> Result<Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>, AppError> {
    if !websocket {
        return Ok(None);
    }
    let slot = state
        .websockets
        .take(&user_id.to_owned())
        .ok_or(AppError::TooManyWebSockets(state.websockets.max()))?;
    Ok(Some(std::sync::Arc::new(slot)))
}

/// Where a browser with portal session `session_id` enters desktop `id` and lands on `to`
/// (a path on the desktop): the desktop origin's handover with a fresh one-time ticket.
/// Only called with desktop origins on.
pub(crate) async fn handover_url(state: &AppState, session_id: &str, id: &str, to: &str) -> Result<String, AppError> {
    let origin = state
        .desktop_origins
        .as_ref()
        .map(|o| o.origin_of(id))
        .unwrap_or_default();
    let ticket = state.desktop_sessions.issue_ticket(session_id, id).await?;
    let to: String = url::form_urlencoded::byte_serialize(to.as_bytes()).collect();
    Ok(format!("{origin}{ENTER_PATH}?ticket={ticket}&to={to}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desktop_paths_split_on_the_raw_id() {
        assert_eq!(
            split_desktop_path("/desktop/alice-ubuntu/"),
            Some(("alice-ubuntu", "/"))
        );
        assert_eq!(split_desktop_path("/desktop/a/app/ui.js"), Some(("a", "/app/ui.js")));
        assert_eq!(split_desktop_path("/desktop/a"), Some(("a", "")));
        assert_eq!(split_desktop_path("/desktop/%61/x"), Some(("%61", "/x")));
        assert_eq!(split_desktop_path("/other"), None);
    }
}
