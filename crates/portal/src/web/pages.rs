//! Server-rendered pages (askama templates, checked at compile time) and what they share:
//! texts for their scripts, the language switch, form parsing.

use askama::Template;
use axum::extract::{OptionalFromRequestParts as _, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use portal_store::Role;

use crate::auth::{CurrentUser, cookie_value};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::error::AppError;

/// The signed-in user as the header shows them (name, role, links, sign-out).
pub(crate) struct Me<'a> {
    pub display_name: &'a str,
    pub role_key: &'static str,
    pub csrf_token: &'a str,
    pub is_admin: bool,
    /// Teachers and admins get the teacher page.
    pub may_teach: bool,
}

impl<'a> Me<'a> {
    pub(crate) fn new(user: &'a CurrentUser) -> Self {
        Me {
            display_name: &user.user.display_name,
            role_key: role_key(user.user.role),
            csrf_token: &user.session.csrf_token,
            is_admin: user.is_admin(),
            may_teach: matches!(user.user.role, Role::Teacher | Role::Admin),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage<'a> {
    pub lang: Lang,
    pub csrf_token: &'a str,
    pub next: &'a str,
    pub username: &'a str,
    pub error: Option<String>,
    /// Offer "Sign in with IServ".
    pub oidc: bool,
    /// Offer the username/password form.
    pub local: bool,
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
    /// An emoji or short text shown until (or instead of) the uploaded icon.
    pub icon: String,
    pub desktop_id: String,
    /// `none`, `starting`, `running`, … (drives which buttons show).
    pub state: &'static str,
    pub state_key: &'static str,
    /// The reason in words, with what to do.
    pub reason_text: Option<&'static str>,
    /// The reason as recorded (technical, English).
    pub reason: Option<String>,
    pub last_used: Option<i64>,
    pub last_used_text: String,
    /// Its place in the start queue in words, while it waits there (shown without JavaScript).
    pub queued_text: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub(crate) struct DashboardPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub types: Vec<TypeTile>,
    pub desktops: Vec<DesktopTile>,
    pub runtime_ok: bool,
    /// A student with assignments: where her hand-ins are in the desktop, and that new ones
    /// need a restart (a running container's mounts cannot change).
    pub handins_note: bool,
    /// Asking for help with her running desktops (`web/help.rs`).
    pub help: crate::web::help::StudentPanel,
    pub js_texts: String,
    /// Messages from the user's teachers to her groups.
    pub class_messages: Vec<portal_store::ClassMessage>,
}

#[derive(Template)]
#[template(path = "view.html")]
pub(crate) struct ViewPage<'a> {
    /// The frame's first URL (see `dashboard::Frame`).
    pub frame_src: String,
    /// The origin the desktop's page posts its messages from.
    pub desktop_origin: String,
    pub lang: Lang,
    pub csrf_token: &'a str,
    pub id: &'a str,
    pub name: &'a str,
    pub launch_url: String,
    /// The type to start again; empty for desktops the portal does not start (static).
    pub type_key: &'a str,
    /// `running` loads the desktop at once; anything else shows the overlay first.
    pub state: &'static str,
    pub state_key: &'static str,
    pub reason_text: Option<&'static str>,
    /// Asking for help with this desktop (`web/help.rs`).
    pub help: crate::web::help::StudentPanel,
    pub js_texts: String,
    /// Messages from the user's teachers to her groups.
    pub class_messages: Vec<portal_store::ClassMessage>,
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
pub(crate) fn html<T: Template>(page: &T) -> Result<axum::response::Html<String>, AppError> {
    page.render()
        .map(axum::response::Html)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("rendering a template")))
}

/// The texts a page's script needs, as JSON for a `<script type="application/json">` data
/// block (not executed, so the CSP allows it).
pub(crate) fn js_texts(lang: Lang, keys: &[&str]) -> String {
    let texts: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| ((*k).to_owned(), lang.script_text(k).into()))
        .collect();
    // `</` inside a value must not close the script element.
    serde_json::Value::Object(texts).to_string().replace("</", "<\\/")
}

/// The texts admin.js needs; every admin page carries them (see `admin_head.html`).
pub(crate) fn admin_js_texts(lang: &Lang) -> String {
    js_texts(*lang, ADMIN_JS_TEXT_KEYS)
}

/// Texts the admin pages' script needs (besides the shared ones).
const ADMIN_JS_TEXT_KEYS: &[&str] = &[
    "admin_pull_done",
    "admin_pull_failed",
    "admin_sessions_ended",
    "err_network",
    "step_pulling",
];

fn lang_cookie(lang: Lang) -> String {
    format!("lang={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.code())
}

/// `?lang=<code>` on any page sets the `lang` cookie, remembers the choice for a signed-in
/// user, and reloads the page without the parameter, so links stay clean. A signed-in user
/// whose browser has no `lang` cookie yet (a new device) gets their remembered choice.
/// A layer on the pages and the API only: the desktops' traffic and fixed assets have no language.
pub(crate) async fn language_switch(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let query = req.uri().query().unwrap_or("").to_owned();
    let chosen = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Lang::parse(&v))
        .filter(|_| req.method() == http::Method::GET);
    let (mut parts, body) = req.into_parts();
    let Some(lang) = chosen else {
        if cookie_value(&parts.headers, "lang").is_some() {
            return next.run(Request::from_parts(parts, body)).await;
        }
        // The extractor caches the user in the request, so the handler does not look again.
        let remembered = CurrentUser::from_request_parts(&mut parts, &state)
            .await
            .ok()
            .flatten()
            .and_then(|u| u.user.language.as_deref().and_then(Lang::parse));
        let Some(lang) = remembered else {
            return next.run(Request::from_parts(parts, body)).await;
        };
        let mut cookies = parts
            .headers
            .get(COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(|v| format!("{v}; "))
            .unwrap_or_default();
        cookies.push_str(&format!("lang={}", lang.code()));
        if let Ok(v) = HeaderValue::from_str(&cookies) {
            parts.headers.insert(COOKIE, v);
        }
        let mut resp = next.run(Request::from_parts(parts, body)).await;
        if let Ok(v) = HeaderValue::from_str(&lang_cookie(lang)) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
        return resp;
    };
    if let Ok(Some(user)) = CurrentUser::from_request_parts(&mut parts, &state).await
        && let Err(e) = state.store.set_user_language(&user.user.id, Some(lang.code())).await
    {
        tracing::warn!(user = %user.user.username, error = %e, "remembering the language failed");
    }
    let rest: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "lang"))
        .finish();
    // `//evil.example/?lang=de` must not become `Location: //evil.example/`.
    let path = crate::web::redirect::safe_path(Some(parts.uri.path()));
    let target = if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{rest}")
    };
    let mut resp = Redirect::to(&target).into_response();
    if let Ok(v) = HeaderValue::from_str(&lang_cookie(lang)) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    resp
}

/// The form's fields; a form that does not parse is a bad request. (Its CSRF token was
/// checked before the handler ran, by `web::csrf`.)
pub(crate) fn form_fields<T>(
    form: Result<axum::Form<T>, axum::extract::rejection::FormRejection>,
) -> Result<T, AppError> {
    let axum::Form(f) = form.map_err(|e| AppError::BadRequest(e.body_text()))?;
    Ok(f)
}

/// The translation key for a role's name.
pub(crate) fn role_key(role: portal_store::Role) -> &'static str {
    match role {
        portal_store::Role::Admin => "role_admin",
        portal_store::Role::Teacher => "role_teacher",
        portal_store::Role::Student => "role_student",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    /// Cuts every `open … close` span out of `text`.
    fn strip(text: &str, open: &str, close: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(open) {
            out.push_str(&rest[..i]);
            rest = rest[i + open.len()..].split_once(close).map(|(_, r)| r).unwrap_or("");
            out.push(' ');
        }
        out.push_str(rest);
        out
    }

    /// Every visible text in the templates comes from the catalogue (`lang.t(…)`) or from
    /// data; literal words in a template would show untranslated in one of the languages.
    #[test]
    fn templates_have_no_untranslated_text() {
        // Not words of either language: language codes, protocols, units, product names.
        const ALLOWED: &[&str] = &[
            "DE", "EN", "HTTP", "http", "https", "IServ", "KiB", "MiB", "GiB", "CPU", "CPUs", "UTC", "PNG", "SVG",
        ];
        let mut found = Vec::new();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let mut text = std::fs::read_to_string(&path).unwrap();
            for (open, close) in [
                ("{#", "#}"),
                ("{%", "%}"),
                ("{{", "}}"),
                ("<script", "</script>"),
                ("<!--", "-->"),
                ("<", ">"),
                ("&", ";"),
            ] {
                text = strip(&text, open, close);
            }
            for word in text.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()) {
                if !ALLOWED.contains(&word) {
                    found.push(format!("{}: {word:?}", path.file_name().unwrap().to_string_lossy()));
                }
            }
            checked += 1;
        }
        assert!(
            found.is_empty(),
            "literal text in templates (put it in locales/*/main.ftl and use lang.t(…)): {found:?}"
        );
        assert!(checked >= 5, "found only {checked} templates");
    }
}
