//! `/`: the signed-in user's desktops.

use axum::extract::State;
use axum::response::Html;
use http::HeaderMap;

use crate::auth::CurrentUser;
use crate::desktop::{launch_url, may_use};
use crate::i18n::Lang;
use crate::pages::{DashboardPage, DesktopTile, html, role_key};
use crate::{AppError, AppState};

pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Html<String>, AppError> {
    let lang = Lang::from_headers(&headers);
    let desktops = state
        .routes
        .all()
        .into_iter()
        .filter(|t| may_use(&user, t))
        .map(|t| DesktopTile {
            name: t.name.clone(),
            launch_url: launch_url(&t.desktop_id),
            id: t.desktop_id.clone(),
        })
        .collect();
    html(&DashboardPage {
        lang,
        user: &user.user,
        role_key: role_key(user.user.role),
        csrf_token: &user.session.csrf_token,
        desktops,
    })
}
