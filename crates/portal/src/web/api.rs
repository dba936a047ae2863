//! The JSON API: desktop types, the user's desktops (start, stop, remove, live progress),
//! input heartbeats, and the admin equivalents. Session-authenticated; writes need the
//! session's CSRF token in `X-CSRF-Token` (and, if sent, the portal's `Origin`).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt as _};
use http::{HeaderMap, StatusCode};
use portal_store::{Desktop, DesktopState};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{CurrentUser, check_csrf};
use crate::domain::lifecycle::StartEvent;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::error::AppError;

pub(crate) mod openapi;
pub(crate) mod types;

use types::{
    Csrf, DesktopEvent, DesktopId, DesktopList, DesktopTypeList, DesktopTypeView, DesktopView, ErrorResponse,
    RemovedCount, StartStep, StoppedCount,
};

fn desktop_json(d: &Desktop) -> Json<DesktopView> {
    Json(DesktopView::from(d))
}

fn csrf(state: &AppState, user: &CurrentUser, headers: &HeaderMap) -> Result<(), AppError> {
    Ok(check_csrf(
        headers,
        None,
        &user.session.csrf_token,
        &state.public_origin,
    )?)
}

fn require_admin(user: &CurrentUser) -> Result<(), AppError> {
    if user.is_admin() {
        Ok(())
    } else {
        Err(AppError::AdminOnly)
    }
}

/// `GET /api/desktop-types`: the types this user may start, in their language.
#[utoipa::path(get, path = "/api/desktop-types", tag = "desktops",
    summary = "The desktop types this user may start",
    security(("session" = [])),
    responses(
        (status = 200, description = "The types this user may start (teachers' grants included), texts in the request's language", body = DesktopTypeList),
        (status = 401, description = "Not signed in", body = ErrorResponse),
    ),
)]
pub(crate) async fn desktop_types(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Json<DesktopTypeList>, AppError> {
    let lang = Lang::from_headers(&headers).code();
    // Teachers' grants count as they do on the dashboard.
    let desktop_types = crate::domain::access::usable_types(&state.store, &user.user)
        .await?
        .iter()
        .map(|t| DesktopTypeView::new(t, lang))
        .collect();
    Ok(Json(DesktopTypeList { desktop_types }))
}

/// `GET /api/desktops`: the user's own desktops.
#[utoipa::path(get, path = "/api/desktops", tag = "desktops",
    summary = "The user's own desktops",
    security(("session" = [])),
    responses(
        (status = 200, description = "The user's own desktops", body = DesktopList),
        (status = 401, description = "Not signed in", body = ErrorResponse),
    ),
)]
pub(crate) async fn list(State(state): State<AppState>, user: CurrentUser) -> Result<Json<DesktopList>, AppError> {
    let desktops = state
        .store
        .desktops_of_user(&user.user.id)
        .await?
        .iter()
        .map(DesktopView::from)
        .collect();
    Ok(Json(DesktopList { desktops }))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct StartRequest {
    /// The desktop type's key.
    #[serde(rename = "type")]
    #[schema(example = "debian")]
    type_key: String,
}

/// `POST /api/desktops {"type": KEY}`: 202 with the desktop; follow `events_url`.
#[utoipa::path(post, path = "/api/desktops", tag = "desktops",
    summary = "Start a desktop",
    security(("session" = [])),
    params(Csrf),
    request_body = StartRequest,
    responses(
        (status = 200, description = "The desktop already runs", body = DesktopView),
        (status = 202, description = "Starting; follow `events_url`", body = DesktopView),
        (status = 400, description = "No JSON body with `type`", body = ErrorResponse),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "CSRF token missing or wrong, or the type is not available to this user", body = ErrorResponse),
        (status = 404, description = "Unknown type", body = ErrorResponse),
        (status = 409, description = "The type is disabled, or this portal starts no desktops", body = ErrorResponse),
        (status = 429, description = "The user runs as many desktops as allowed", body = ErrorResponse),
        (status = 503, description = "The portal's limits are reached or the runtime is unavailable", body = ErrorResponse),
    ),
)]
pub(crate) async fn start(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Result<Json<StartRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    csrf(&state, &user, &headers)?;
    let Json(req) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let d = state.desktops.start(&user.user, &req.type_key).await?;
    let status = if d.state == DesktopState::Running {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, desktop_json(&d)).into_response())
}

/// `GET /api/desktops/{id}`.
#[utoipa::path(get, path = "/api/desktops/{id}", tag = "desktops",
    summary = "One desktop",
    security(("session" = [])),
    params(DesktopId),
    responses(
        (status = 200, description = "The desktop", body = DesktopView),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "Someone else's desktop", body = ErrorResponse),
        (status = 404, description = "No such desktop", body = ErrorResponse),
    ),
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<DesktopView>, AppError> {
    Ok(desktop_json(&state.desktops.owned(&user.user, &id).await?))
}

/// `POST /api/desktops/{id}/stop`.
#[utoipa::path(post, path = "/api/desktops/{id}/stop", tag = "desktops",
    summary = "Stop a desktop",
    security(("session" = [])),
    params(DesktopId, Csrf),
    responses(
        (status = 200, description = "Stopped; the desktop as it is now", body = DesktopView),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "CSRF token missing or wrong, or someone else's desktop", body = ErrorResponse),
        (status = 404, description = "No such desktop", body = ErrorResponse),
    ),
)]
pub(crate) async fn stop(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DesktopView>, AppError> {
    csrf(&state, &user, &headers)?;
    state.desktops.owned(&user.user, &id).await?;
    let reason = if user.is_admin() && !id.starts_with(&format!("{}-", user.user.username)) {
        "stopped by an administrator"
    } else {
        "stopped by its user"
    };
    state.desktops.stop(&id, reason).await?;
    Ok(desktop_json(&state.desktops.owned(&user.user, &id).await?))
}

/// `DELETE /api/desktops/{id}`: container gone, home kept.
#[utoipa::path(delete, path = "/api/desktops/{id}", tag = "desktops",
    summary = "Remove a desktop's container (its home is kept)",
    security(("session" = [])),
    params(DesktopId, Csrf),
    responses(
        (status = 204, description = "Removed (the container; the home volume is kept)"),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "CSRF token missing or wrong, or someone else's desktop", body = ErrorResponse),
        (status = 404, description = "No such desktop", body = ErrorResponse),
    ),
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    csrf(&state, &user, &headers)?;
    state.desktops.owned(&user.user, &id).await?;
    state.desktops.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, ToSchema)]
pub(crate) struct ActivityRequest {
    /// Kasm's `idle_session_timeout` message: the desktop's own idle limit was reached.
    #[serde(default)]
    idle_session_timeout: bool,
}

/// `POST /api/desktops/{id}/activity`: a heartbeat of keyboard or mouse input from the
/// desktop page (or Kasm's idle report).
#[utoipa::path(post, path = "/api/desktops/{id}/activity", tag = "desktops",
    summary = "Report input on the desktop (keeps it from stopping as idle)",
    security(("session" = [])),
    params(DesktopId, Csrf),
    request_body(content = Option<ActivityRequest>, description = "Optional; without it the call is a heartbeat"),
    responses(
        (status = 204, description = "Counted (only the owner's input keeps a desktop alive), or the desktop stopped as idle"),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "CSRF token missing or wrong, or someone else's desktop", body = ErrorResponse),
        (status = 404, description = "No such desktop", body = ErrorResponse),
    ),
)]
pub(crate) async fn activity(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<ActivityRequest>>,
) -> Result<StatusCode, AppError> {
    csrf(&state, &user, &headers)?;
    let d = state.desktops.owned(&user.user, &id).await?;
    // Only the owner's input counts: an admin looking in does not keep a desktop alive.
    if d.user_id != user.user.id {
        return Ok(StatusCode::NO_CONTENT);
    }
    if body.is_some_and(|Json(b)| b.idle_session_timeout) {
        state.desktops.stop(&id, "idle (reported by the desktop)").await?;
    } else {
        state.desktops.touch(&id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/desktops/{id}/events`: server-sent events. First the current state, then each
/// start step until `ready` or `failed`.
#[utoipa::path(get, path = "/api/desktops/{id}/events", tag = "desktops",
    summary = "A desktop's state and start progress, live",
    security(("session" = [])),
    params(DesktopId),
    responses(
        (status = 200, description = "Server-sent events: `state` (a desktop) first; while it starts, `progress` (a start step) until `ready` or `failed`", content_type = "text/event-stream", body = DesktopEvent),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "Someone else's desktop", body = ErrorResponse),
        (status = 404, description = "No such desktop", body = ErrorResponse),
    ),
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    // Subscribe before reading the state, so no step falls between the two.
    let live = state.desktops.subscribe(&id);
    let d = state.desktops.owned(&user.user, &id).await?;
    let progress = |step: &StartEvent| {
        Event::default()
            .event("progress")
            .json_data(StartStep::from(step))
            .unwrap_or_default()
    };
    let is_last = |step: &StartEvent| matches!(step, StartEvent::Ready { .. } | StartEvent::Failed { .. });
    let mut initial = vec![
        Event::default()
            .event("state")
            .json_data(DesktopView::from(&d))
            .unwrap_or_default(),
    ];
    let mut follow = None;
    if let (Some((history, rx)), DesktopState::Starting) = (live, d.state) {
        // Steps before this request (a pull that began earlier) come first.
        let finished = history.iter().any(is_last);
        initial.extend(history.iter().map(progress));
        follow = (!finished).then_some(rx);
    }
    let live = futures_util::stream::unfold(follow, move |rx| async move {
        let mut rx = rx?;
        loop {
            match rx.recv().await {
                Ok(step) => {
                    let next = (!is_last(&step)).then_some(rx);
                    return Some((progress(&step), next));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream = futures_util::stream::iter(initial).chain(live).map(Ok::<_, Infallible>);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// `GET /api/admin/desktops`: every desktop.
#[utoipa::path(get, path = "/api/admin/desktops", tag = "admin",
    summary = "Every desktop",
    security(("session" = [])),
    responses(
        (status = 200, description = "Every desktop", body = DesktopList),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "Not an administrator", body = ErrorResponse),
    ),
)]
pub(crate) async fn admin_list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<DesktopList>, AppError> {
    require_admin(&user)?;
    let desktops = state
        .store
        .all_desktops()
        .await?
        .iter()
        .map(DesktopView::from)
        .collect();
    Ok(Json(DesktopList { desktops }))
}

/// `POST /api/admin/stop-all`.
#[utoipa::path(post, path = "/api/admin/stop-all", tag = "admin",
    summary = "Stop every running desktop",
    security(("session" = [])),
    params(Csrf),
    responses(
        (status = 200, description = "Every running desktop was stopped", body = StoppedCount),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "Not an administrator, or CSRF token missing or wrong", body = ErrorResponse),
    ),
)]
pub(crate) async fn admin_stop_all(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Json<StoppedCount>, AppError> {
    require_admin(&user)?;
    csrf(&state, &user, &headers)?;
    let stopped = state
        .desktops
        .stop_all("stopped by an administrator (stop all)")
        .await?;
    Ok(Json(StoppedCount { stopped }))
}

/// `POST /api/admin/cleanup-stopped`.
#[utoipa::path(post, path = "/api/admin/cleanup-stopped", tag = "admin",
    summary = "Remove every stopped desktop's container",
    security(("session" = [])),
    params(Csrf),
    responses(
        (status = 200, description = "Stopped desktops removed (their homes are kept)", body = RemovedCount),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "Not an administrator, or CSRF token missing or wrong", body = ErrorResponse),
    ),
)]
pub(crate) async fn admin_cleanup(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Json<RemovedCount>, AppError> {
    require_admin(&user)?;
    csrf(&state, &user, &headers)?;
    let removed = state.desktops.cleanup_stopped().await?;
    Ok(Json(RemovedCount { removed }))
}
