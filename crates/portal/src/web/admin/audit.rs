//! `/admin/audit`: the audit log, newest first, paged, filtered by kind and user; the hourly
//! pruning that keeps it bounded; and the one-line hooks the desktop lifecycle calls.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use portal_store::{AuditFilter, AuditKind};
use serde::Deserialize;

use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::admin::{Admin, AdminError, AuditRow};
use crate::web::branding::Branding;
use crate::web::pages::{Me, html};

/// Entries per page.
const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    page: Option<i64>,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
pub(crate) struct AuditPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub section: &'static str,
    pub entries: Vec<AuditRow>,
    pub kinds: Vec<(&'static str, String)>,
    pub kind: String,
    pub user: String,
    pub page: i64,
    pub prev_url: Option<String>,
    pub next_url: Option<String>,
    pub retention_days: i64,
}

fn page_url(kind: &str, user: &str, page: i64) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("kind", kind)
        .append_pair("user", user)
        .append_pair("page", &page.to_string())
        .finish();
    format!("/admin/audit?{query}")
}

/// `GET /admin/audit?kind=&user=&page=`.
pub(crate) async fn show(
    State(state): State<AppState>,
    admin: Admin,
    lang: Lang,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<String>, AdminError> {
    let Query(q) = query.map_err(|e| AdminError::Invalid(format!("page: {}", e.body_text())))?;
    let kind = if q.kind.is_empty() {
        None
    } else {
        Some(q.kind.parse::<AuditKind>()?)
    };
    let page = q.page.unwrap_or(1);
    if !(1..=100_000).contains(&page) {
        return Err(AdminError::Invalid(format!("page: {page} is not from 1 to 100000")));
    }
    let (entries, more) = state
        .store
        .audit_page(&AuditFilter {
            kind,
            user: Some(q.user.trim().to_lowercase()).filter(|u| !u.is_empty()),
            offset: (page - 1) * PAGE_SIZE,
            limit: PAGE_SIZE,
        })
        .await?;
    let retention_days = Branding::load(&state.store).await?.retention_days;
    Ok(html(&AuditPage {
        lang,
        me: Me::new(&admin.0),
        section: "audit",
        entries: entries.into_iter().map(AuditRow::new).collect(),
        kinds: AuditKind::ALL
            .iter()
            .map(|k| (k.as_str(), format!("audit_{}", k.as_str())))
            .collect(),
        prev_url: (page > 1).then(|| page_url(&q.kind, &q.user, page - 1)),
        next_url: more.then(|| page_url(&q.kind, &q.user, page + 1)),
        kind: q.kind,
        user: q.user,
        page,
        retention_days,
    })?)
}
