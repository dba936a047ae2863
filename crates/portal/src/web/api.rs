//! The JSON API: desktop types, the user's desktops (start, stop, remove, live progress),
//! input heartbeats, and the admin equivalents. Session-authenticated; writes need the
//! session's CSRF token in `X-CSRF-Token` (and, if sent, the portal's `Origin`), checked by
//! `web::csrf` before a handler runs.

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
use serde_json::{Value, json};

use crate::auth::CurrentUser;
use crate::domain::lifecycle::{StartEvent, launch_url};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::error::AppError;

/// The JSON view of a desktop; never includes its password.
fn desktop_json(d: &Desktop) -> Value {
    json!({
        "id": d.id,
        "type": d.type_key,
        "owner": d.username,
        "state": d.state,
        "state_reason": d.state_reason,
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

/// `POST /api/desktops/{id}/stop`.
pub(crate) async fn stop(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    state.desktops.owned(&user.user, &id).await?;
    let reason = if user.is_admin() && !id.starts_with(&format!("{}-", user.user.username)) {
        "stopped by an administrator"
    } else {
        "stopped by its user"
    };
    state.desktops.stop(&id, reason).await?;
    Ok(Json(desktop_json(&state.desktops.owned(&user.user, &id).await?)))
}

/// `DELETE /api/desktops/{id}`: container gone, home kept.
pub(crate) async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    state.desktops.owned(&user.user, &id).await?;
    state.desktops.remove(&id).await?;
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
        state.desktops.stop(&id, "idle (reported by the desktop)").await?;
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
    let progress = |step: &StartEvent| Event::default().event("progress").json_data(step).unwrap_or_default();
    let is_last = |step: &StartEvent| matches!(step, StartEvent::Ready { .. } | StartEvent::Failed { .. });
    let mut initial = vec![
        Event::default()
            .event("state")
            .json_data(desktop_json(&d))
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
pub(crate) async fn admin_list(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Value>, AppError> {
    require_admin(&user)?;
    let desktops: Vec<Value> = state.store.all_desktops().await?.iter().map(desktop_json).collect();
    Ok(Json(json!({ "desktops": desktops })))
}

/// `POST /api/admin/stop-all`.
pub(crate) async fn admin_stop_all(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Value>, AppError> {
    require_admin(&user)?;
    let stopped = state
        .desktops
        .stop_all("stopped by an administrator (stop all)")
        .await?;
    Ok(Json(json!({ "stopped": stopped })))
}

/// `POST /api/admin/cleanup-stopped`.
pub(crate) async fn admin_cleanup(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Value>, AppError> {
    require_admin(&user)?;
    let removed = state.desktops.cleanup_stopped().await?;
    Ok(Json(json!({ "removed": removed })))
}
