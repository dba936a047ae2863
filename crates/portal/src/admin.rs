//! `/admin`: every desktop with its state, and the admin's controls (stop, remove, stop all,
//! clean up). The buttons call the admin JSON API.

use axum::extract::State;
use axum::response::Html;
use http::HeaderMap;
use portal_store::DesktopState;

use crate::auth::CurrentUser;
use crate::dashboard::state_key;
use crate::i18n::Lang;
use crate::pages::{AdminPage, AdminRow, html};
use crate::{AppError, AppState};

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC, or an empty string.
fn when(ts: Option<i64>) -> String {
    let Some(ts) = ts else { return String::new() };
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Html<String>, AppError> {
    if !user.is_admin() {
        return Err(AppError::AdminOnly);
    }
    let lang = Lang::from_headers(&headers);
    let desktops: Vec<AdminRow> = state
        .store
        .all_desktops()
        .await?
        .into_iter()
        .map(|d| AdminRow {
            running: matches!(d.state, DesktopState::Running | DesktopState::Starting),
            state_key: state_key(Some(d.state)),
            reason: d.state_reason,
            started: when(d.started_at),
            last_input: when(d.last_activity_at),
            owner: d.username,
            id: d.id,
        })
        .collect();
    let running = desktops.iter().filter(|d| d.running).count();
    html(&AdminPage {
        lang,
        csrf_token: &user.session.csrf_token,
        runtime_ok: state.runtime.ping().await.is_ok(),
        running,
        desktops,
    })
}

#[cfg(test)]
mod tests {
    use super::when;

    #[test]
    fn timestamps_render_as_utc_dates() {
        assert_eq!(when(Some(0)), "1970-01-01 00:00 UTC");
        assert_eq!(when(Some(1_795_668_878)), "2026-11-26 04:54 UTC");
        assert_eq!(when(Some(951_782_400)), "2000-02-29 00:00 UTC");
        assert_eq!(when(None), "");
    }
}
