//! The JSON API: desktop types, the user's desktops (start, stop, remove, live progress),
//! input heartbeats, and the admin equivalents. Session-authenticated; writes need the
//! session's CSRF token in `X-CSRF-Token` (and, if sent, the portal's `Origin`), checked by
//! `web::csrf` before a handler runs.

use std::convert::Infallible;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{MatchedPath, Path, State};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use http::StatusCode;
use portal_store::{Desktop, DesktopState};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::CurrentUser;
use crate::domain::admin::AdminActions;
use crate::domain::stop_reason::StopReason;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::events::progress_sse;

pub(crate) mod files;
pub(crate) mod openapi;
pub(crate) mod types;

use types::{
    Csrf, DesktopEvent, DesktopId, DesktopList, DesktopTypeList, DesktopTypeView, DesktopView, ErrorResponse,
    RemovedCount, StoppedCount,
};

fn desktop_json(d: &Desktop) -> Json<DesktopView> {
    Json(DesktopView::from(d))
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
    lang: Lang,
) -> Result<Json<DesktopTypeList>, AppError> {
    let lang = lang.code();
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
        (status = 202, description = "Starting (or waiting for its turn in the start queue); follow `events_url`", body = DesktopView),
        (status = 400, description = "No JSON body with `type`", body = ErrorResponse),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "CSRF token missing or wrong, or the type is not available to this user", body = ErrorResponse),
        (status = 404, description = "Unknown type", body = ErrorResponse),
        (status = 409, description = "The type is disabled, or this portal starts no desktops", body = ErrorResponse),
        (status = 429, description = "The user runs as many desktops as allowed", body = ErrorResponse),
        (status = 503, description = "The total limit is reached, the start queue is full (`start_queue_full`) or the runtime is unavailable", body = ErrorResponse),
        (status = 507, description = "The user's home is over its quota (`home_over_quota`; what a desktop wrote counts): nothing is started until files are deleted", body = ErrorResponse),
    ),
)]
pub(crate) async fn start(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Result<Json<StartRequest>, JsonRejection>,
) -> Result<Response, AppError> {
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

/// Whether the request came in under `/api/admin/`: an administrator's action there leaves
/// the same audit entry as the admin page's form.
fn admin_route(path: &MatchedPath) -> bool {
    path.as_str().starts_with("/api/admin/")
}

/// The administrator's actions, on an admin route and for an admin only.
fn admin_actions<'a>(state: &'a AppState, user: &'a CurrentUser, path: &MatchedPath) -> Option<AdminActions<'a>> {
    (admin_route(path) && user.is_admin()).then(|| admin_actions_of(state, user))
}

/// `POST /api/desktops/{id}/stop` and `/api/admin/desktops/{id}/stop`.
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
    path: MatchedPath,
    Path(id): Path<String>,
) -> Result<Json<DesktopView>, AppError> {
    match admin_actions(&state, &user, &path) {
        Some(admin) => admin.stop(&[&id]).await?,
        None => state.desktops.stop_by(&user.user, &id).await?,
    }
    Ok(desktop_json(&state.desktops.owned(&user.user, &id).await?))
}

/// `DELETE /api/desktops/{id}` and `/api/admin/desktops/{id}`: container gone, home kept.
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
    path: MatchedPath,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    state.desktops.owned(&user.user, &id).await?;
    match admin_actions(&state, &user, &path) {
        Some(admin) => admin.remove(&[&id]).await?,
        None => state.desktops.remove(&id).await?,
    }
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
    Path(id): Path<String>,
    body: Option<Json<ActivityRequest>>,
) -> Result<StatusCode, AppError> {
    let d = state.desktops.owned(&user.user, &id).await?;
    // Only the owner's input counts: an admin looking in does not keep a desktop alive.
    if d.user_id != user.user.id {
        return Ok(StatusCode::NO_CONTENT);
    }
    if body.is_some_and(|Json(b)| b.idle_session_timeout) {
        state.desktops.stop(&id, &StopReason::IdleReported).await?;
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
    let slot = state
        .event_streams
        .take(&user.user.id)
        .ok_or(AppError::TooManyStreams(state.event_streams.max()))?;
    // Subscribe before reading the state, so no step falls between the two.
    let live = state.desktops.subscribe(&id);
    let d = state.desktops.owned(&user.user, &id).await?;
    let first = Event::default()
        .event("state")
        .json_data(DesktopView::from(&d))
        .unwrap_or_default();
    // Steps before this request (a pull that began earlier) come first.
    let steps = match (live, d.state) {
        (Some(steps), DesktopState::Starting) => steps,
        // Starting on another portal (several share one database): how it ends.
        (None, DesktopState::Starting) => state.desktops.follow_peer_start(&id),
        _ => (Vec::new(), None),
    };
    Ok(progress_sse(vec![first], steps, slot))
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
) -> Result<Json<StoppedCount>, AppError> {
    require_admin(&user)?;
    let stopped = admin_actions_of(&state, &user).stop_all().await?;
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
) -> Result<Json<RemovedCount>, AppError> {
    require_admin(&user)?;
    let removed = admin_actions_of(&state, &user).cleanup().await?;
    Ok(Json(RemovedCount { removed }))
}

/// The administrator's actions for a route only admins reach.
fn admin_actions_of<'a>(state: &'a AppState, user: &'a CurrentUser) -> AdminActions<'a> {
    AdminActions {
        desktops: &state.desktops,
        store: &state.store,
        admin: &user.user,
    }
}
