//! `/`: the desktops the signed-in user may start or open; `/view/{id}`: one desktop,
//! full-window, with input heartbeats for idle detection.

use axum::extract::{Path, State};
use axum::response::Html;
use http::HeaderMap;
use portal_store::DesktopState;

use crate::auth::CurrentUser;
use crate::desktop::{launch_url, may_use};
use crate::i18n::Lang;
use crate::lifecycle::may_use_type;
use crate::pages::{DashboardPage, DesktopTile, TypeTile, ViewPage, html, role_key};
use crate::{AppError, AppState};

/// Texts the dashboard's script needs, in the page's language.
const JS_TEXT_KEYS: &[&str] = &[
    "state_none",
    "state_starting",
    "state_running",
    "state_stopping",
    "state_stopped",
    "state_failed",
    "step_pulling",
    "step_creating",
    "step_starting",
    "step_waiting",
];

pub(crate) fn state_key(state: Option<DesktopState>) -> &'static str {
    match state {
        None => "state_none",
        Some(DesktopState::Starting) => "state_starting",
        Some(DesktopState::Running) => "state_running",
        Some(DesktopState::Stopping) => "state_stopping",
        Some(DesktopState::Stopped) => "state_stopped",
        Some(DesktopState::Failed) => "state_failed",
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Html<String>, AppError> {
    let lang = Lang::from_headers(&headers);
    let mine = state.store.desktops_of_user(&user.user.id).await?;
    let starts = state.runtime.starts_desktops();
    let types = if starts {
        state
            .store
            .list_desktop_types()
            .await?
            .into_iter()
            .filter(|t| t.enabled && may_use_type(&user.user, t))
            .map(|t| {
                let id = format!("{}-{}", user.user.username, t.key);
                let d = mine.iter().find(|d| d.id == id);
                TypeTile {
                    name: t.name(lang.code()).to_owned(),
                    description: t.description(lang.code()).to_owned(),
                    icon: t.icon.clone(),
                    state: d.map(|d| d.state.as_str()).unwrap_or("none").to_owned(),
                    state_key: state_key(d.map(|d| d.state)),
                    reason: d.and_then(|d| d.state_reason.clone()),
                    key: t.key,
                    desktop_id: id,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    // Desktops that are not per-user containers: lab machines and other static hosts.
    let desktops = state
        .routes
        .all()
        .into_iter()
        .filter(|t| !mine.iter().any(|d| d.id == t.desktop_id) && may_use(&user, t))
        .filter(|t| !starts || state.config.static_desktops.iter().any(|s| s.id == t.desktop_id))
        .map(|t| DesktopTile {
            name: t.name.clone(),
            launch_url: launch_url(&t.desktop_id),
            id: t.desktop_id.clone(),
        })
        .collect();
    let texts: serde_json::Map<String, serde_json::Value> = JS_TEXT_KEYS
        .iter()
        .map(|k| ((*k).to_owned(), lang.t(k).into()))
        .collect();
    let runtime_ok = !starts || state.runtime.ping().await.is_ok();
    html(&DashboardPage {
        lang,
        user: &user.user,
        role_key: role_key(user.user.role),
        csrf_token: &user.session.csrf_token,
        types,
        desktops,
        runtime_ok,
        is_admin: user.is_admin(),
        // `</` cannot appear in serde_json output of these strings except inside values;
        // escape it so the JSON cannot close the script element.
        js_texts: serde_json::Value::Object(texts).to_string().replace("</", "<\\/"),
    })
}

/// `GET /view/{id}`: the desktop in a full-window frame.
pub(crate) async fn view(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    let lang = Lang::from_headers(&headers);
    let target = state
        .routes
        .get(&id)
        .ok_or_else(|| AppError::DesktopNotFound(id.clone()))?;
    if !may_use(&user, &target) {
        return Err(AppError::ForbiddenDesktop);
    }
    // A container desktop is named after its type; a static one has its own name.
    let type_name = match state.store.desktop(&id).await? {
        Some(d) => state
            .store
            .desktop_type(&d.type_key)
            .await?
            .map(|t| t.name(lang.code()).to_owned()),
        None => None,
    };
    html(&ViewPage {
        lang,
        csrf_token: &user.session.csrf_token,
        name: type_name.as_deref().unwrap_or(&target.name),
        launch_url: launch_url(&id),
        id: &id,
    })
}
