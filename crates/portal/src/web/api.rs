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
use http::{HeaderMap, StatusCode};
use portal_store::{Desktop, DesktopState};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::CurrentUser;
use crate::domain::admin::AdminActions;
use crate::domain::lifecycle::launch_url;
use crate::domain::stop_reason::StopReason;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::events::progress_sse;

/// The JSON view of a desktop; never includes its password.
fn desktop_json(d: &Desktop) -> Value {
    json!({
        "id": d.id,
        "type": d.type_key,
        "owner": d.username,
        "state": d.state,
        "state_reason": StopReason::of(d).map(|r| r.to_string()),
        "launch_url": launch_url(&d.id),
        "view_url": format!("/view/{}", d.id),
        "events_url": format!("/api/desktops/{}/events", d.id),
        "created_at": d.created_at,
        "started_at": d.started_at,
        "stopped_at": d.stopped_at,
        "last_activity_at": d.last_activity_at,
    })
}

fn require_admin(user: &CurrentUser) -> Result<(), AppError> {
    if user.is_admin() {
        Ok(())
    } else {
        Err(AppError::AdminOnly)
    }
}

/// `GET /api/desktop-types`: the types this user may start, in their language.
pub(crate) async fn desktop_types(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Json<Value>, AppError> {
    let lang = Lang::from_headers(&headers).code();
    // Teachers' grants count as they do on the dashboard.
    let types: Vec<Value> = crate::domain::access::usable_types(&state.store, &user.user)
        .await?
        .into_iter()
        .map(|t| {
            json!({
                "key": t.key,
                "name": t.name(lang),
                "description": t.description(lang),
                "icon": t.icon,
                "idle_timeout_secs": t.idle_timeout_secs,
            })
        })
        .collect();
    Ok(Json(json!({ "desktop_types": types })))
}

/// `GET /api/desktops`: the user's own desktops.
pub(crate) async fn list(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Value>, AppError> {
    let desktops: Vec<Value> = state
        .store
        .desktops_of_user(&user.user.id)
        .await?
        .iter()
        .map(desktop_json)
        .collect();
    Ok(Json(json!({ "desktops": desktops })))
}

#[derive(Deserialize)]
pub(crate) struct StartRequest {
    #[serde(rename = "type")]
    type_key: String,
}

/// `POST /api/desktops {"type": KEY}`: 202 with the desktop; follow `events_url`.
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
    Ok((status, Json(desktop_json(&d))).into_response())
}

/// `GET /api/desktops/{id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(desktop_json(&state.desktops.owned(&user.user, &id).await?)))
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
pub(crate) async fn stop(
    State(state): State<AppState>,
    user: CurrentUser,
    path: MatchedPath,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    match admin_actions(&state, &user, &path) {
        Some(admin) => admin.stop(&[&id]).await?,
        None => state.desktops.stop_by(&user.user, &id).await?,
    }
    Ok(Json(desktop_json(&state.desktops.owned(&user.user, &id).await?)))
}

/// `DELETE /api/desktops/{id}` and `/api/admin/desktops/{id}`: container gone, home kept.
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

#[derive(Deserialize, Default)]
pub(crate) struct ActivityRequest {
    /// Kasm's `idle_session_timeout` message: the desktop's own idle limit was reached.
    #[serde(default)]
    idle_session_timeout: bool,
}

/// `POST /api/desktops/{id}/activity`: a heartbeat of keyboard or mouse input from the
/// desktop page (or Kasm's idle report).
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
pub(crate) async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    // Subscribe before reading the state, so no step falls between the two.
    let live = state.desktops.subscribe(&id);
    let d = state.desktops.owned(&user.user, &id).await?;
    let first = Event::default()
        .event("state")
        .json_data(desktop_json(&d))
        .unwrap_or_default();
    // Steps before this request (a pull that began earlier) come first.
    let steps = match (live, d.state) {
        (Some(steps), DesktopState::Starting) => steps,
        _ => (Vec::new(), None),
    };
    Ok(progress_sse(vec![first], steps))
}

/// `GET /api/admin/desktops`: every desktop.
pub(crate) async fn admin_list(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Value>, AppError> {
    require_admin(&user)?;
    let desktops: Vec<Value> = state.store.all_desktops().await?.iter().map(desktop_json).collect();
    Ok(Json(json!({ "desktops": desktops })))
}

/// `POST /api/admin/stop-all`.
pub(crate) async fn admin_stop_all(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Value>, AppError> {
    require_admin(&user)?;
    let stopped = admin_actions_of(&state, &user).stop_all().await?;
    Ok(Json(json!({ "stopped": stopped })))
}

/// `POST /api/admin/cleanup-stopped`.
pub(crate) async fn admin_cleanup(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Value>, AppError> {
    require_admin(&user)?;
    let removed = admin_actions_of(&state, &user).cleanup().await?;
    Ok(Json(json!({ "removed": removed })))
}

/// The administrator's actions for a route only admins reach.
fn admin_actions_of<'a>(state: &'a AppState, user: &'a CurrentUser) -> AdminActions<'a> {
    AdminActions {
        desktops: &state.desktops,
        store: &state.store,
        admin: &user.user,
    }
}
