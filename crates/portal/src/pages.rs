//! Server-rendered pages (askama templates, checked at compile time) and static assets.

use askama::Template;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use portal_store::User;

use crate::i18n::Lang;

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage<'a> {
    pub lang: Lang,
    pub csrf_token: &'a str,
    pub next: &'a str,
    pub username: &'a str,
    pub error: Option<&'static str>,
}

/// One desktop tile on the dashboard.
pub(crate) struct DesktopTile {
    pub id: String,
    pub name: String,
    pub launch_url: String,
}

/// One desktop type on the dashboard, with the user's desktop of that type.
pub(crate) struct TypeTile {
    pub key: String,
    pub name: String,
    pub description: String,
    pub icon: String,
    pub desktop_id: String,
    /// `none`, `starting`, `running`, … (drives which buttons show).
    pub state: String,
    pub state_key: &'static str,
    pub reason: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub(crate) struct DashboardPage<'a> {
    pub lang: Lang,
    pub user: &'a User,
    pub role_key: &'static str,
    pub csrf_token: &'a str,
    pub types: Vec<TypeTile>,
    pub desktops: Vec<DesktopTile>,
    pub runtime_ok: bool,
    pub is_admin: bool,
    pub js_texts: String,
}

/// One desktop in the admin overview.
pub(crate) struct AdminRow {
    pub id: String,
    pub owner: String,
    pub running: bool,
    pub state_key: &'static str,
    pub reason: Option<String>,
    pub started: String,
    pub last_input: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
pub(crate) struct AdminPage<'a> {
    pub lang: Lang,
    pub csrf_token: &'a str,
    pub runtime_ok: bool,
    pub running: usize,
    pub desktops: Vec<AdminRow>,
}

#[derive(Template)]
#[template(path = "view.html")]
pub(crate) struct ViewPage<'a> {
    pub lang: Lang,
    pub csrf_token: &'a str,
    pub id: &'a str,
    pub name: &'a str,
    pub launch_url: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage<'a> {
    pub lang: Lang,
    pub status: u16,
    pub message: &'a str,
    pub detail: Option<&'a str>,
}

impl<'a> ErrorPage<'a> {
    pub(crate) fn new(lang: Lang, status: StatusCode, message: &'a str, detail: Option<&'a str>) -> Self {
        Self {
            lang,
            status: status.as_u16(),
            message,
            detail,
        }
    }

    /// Rendering a template with only strings in it cannot fail in practice; if it ever
    /// does, the plain message is still better than a second error.
    pub(crate) fn render_html(&self) -> String {
        self.render().unwrap_or_else(|_| self.message.to_owned())
    }
}

/// Renders a template into a response; a failure is an internal error.
pub(crate) fn html<T: Template>(page: &T) -> Result<axum::response::Html<String>, crate::AppError> {
    page.render()
        .map(axum::response::Html)
        .map_err(|e| crate::AppError::Internal(anyhow::Error::new(e).context("rendering a template")))
}

pub(crate) async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/portal.css"),
    )
        .into_response()
}

pub(crate) async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/portal.js"),
    )
        .into_response()
}

/// `?lang=de|en` on any page sets the `lang` cookie and reloads the page without the
/// parameter, so links stay clean.
pub(crate) async fn language_switch(req: Request, next: Next) -> Response {
    let query = req.uri().query().unwrap_or("");
    let chosen = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Lang::parse(&v));
    let Some(lang) = chosen.filter(|_| req.method() == http::Method::GET && !req.uri().path().starts_with("/desktop/"))
    else {
        return next.run(req).await;
    };
    let rest: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "lang"))
        .finish();
    let target = if rest.is_empty() {
        req.uri().path().to_owned()
    } else {
        format!("{}?{rest}", req.uri().path())
    };
    let cookie = format!("lang={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.code());
    let mut resp = Redirect::to(&target).into_response();
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    resp
}

/// The translation key for a role's name.
pub(crate) fn role_key(role: portal_store::Role) -> &'static str {
    match role {
        portal_store::Role::Admin => "role_admin",
        portal_store::Role::Teacher => "role_teacher",
        portal_store::Role::Student => "role_student",
    }
}
