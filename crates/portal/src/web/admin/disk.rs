//! `/admin/disk`: disk use per user and per class, largest first, with each user's quota. The
//! walk runs off the request's thread and is kept for a minute (`domain::disk_use`).

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::domain::disk_use::DiskUseError;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::admin::{Admin, AdminError};
use crate::web::error::AppError;
use crate::web::files::human_size;
use crate::web::pages::{Me, html};

/// One line of either table; sizes in words and exact bytes (`data-bytes`).
pub(crate) struct UseRow {
    pub name: String,
    pub detail: String,
    pub first: (u64, String),
    pub second: (u64, String),
    pub total: (u64, String),
    /// Users: their quota in words, or "none".
    pub quota: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_disk.html")]
pub(crate) struct DiskPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub section: &'static str,
    pub computed: String,
    pub users: Vec<UseRow>,
    pub classes: Vec<UseRow>,
}

impl From<DiskUseError> for AdminError {
    fn from(e: DiskUseError) -> Self {
        match e {
            DiskUseError::Store(e) => e.into(),
            DiskUseError::Files(e) => AdminError::App(AppError::Files(e)),
        }
    }
}

/// `GET /admin/disk`.
pub(crate) async fn show(State(state): State<AppState>, admin: Admin, lang: Lang) -> Result<Html<String>, AdminError> {
    let report = state.disk_use.report(&state.store, &state.files).await?;
    let size = |b: u64| (b, human_size(b, lang));
    Ok(html(&DiskPage {
        lang,
        me: Me::new(&admin.0),
        section: "disk",
        computed: crate::web::time::show(&state.config.timezone, report.computed_at, lang),
        users: report
            .users
            .iter()
            .map(|u| UseRow {
                name: u.username.clone(),
                detail: u.display_name.clone(),
                first: size(u.home),
                second: size(u.handins),
                total: size(u.total()),
                quota: Some(
                    u.quota
                        .map(|q| human_size(q, lang))
                        .unwrap_or_else(|| lang.t("admin_disk_no_quota").to_owned()),
                ),
            })
            .collect(),
        classes: report
            .classes
            .iter()
            .map(|c| UseRow {
                name: c.group.clone(),
                detail: String::new(),
                first: size(c.folder),
                second: size(c.handins),
                total: size(c.total()),
                quota: None,
            })
            .collect(),
    })?)
}
