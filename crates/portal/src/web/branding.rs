//! The school's branding: name, logo and primary colour, set by admins on `/admin/branding`
//! and shown on every page (header, title, the accent colour).
//!
//! Every page template extends `base.html`, and their structs belong to many modules. Rather
//! than add a field to each, a middleware loads the branding once per page request into a
//! task-local, and `base.html` reads it through [`school_name`], [`logo_url`] and [`version`].
//! The colour comes as a stylesheet (`/branding.css`), since the CSP forbids inline styles.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Multipart, Request, State};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::HeaderMap;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use portal_store::{AuditKind, Store};

use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::admin::{Admin, AdminError, AdminForm};
use crate::web::error::AppError;
use crate::web::pages::{Me, html};
use crate::web::uploads::image_response;

const SCHOOL_NAME: &str = "school_name";
const PRIMARY_COLOR: &str = "primary_color";
const LOGO_VERSION: &str = "logo_version";
/// Days audit entries are kept.
pub(crate) const AUDIT_RETENTION_DAYS: &str = "audit_retention_days";
pub(crate) const DEFAULT_RETENTION_DAYS: i64 = 90;
const LOGO: &str = "logo";
const MAX_SCHOOL_NAME_CHARS: usize = 100;

/// What a page shows of the school.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Branding {
    pub school_name: Option<String>,
    /// `#rrggbb`.
    pub primary_color: Option<String>,
    /// When the logo changed, if there is one.
    pub logo_version: Option<i64>,
    pub retention_days: i64,
}

impl Branding {
    pub(crate) async fn load(store: &Store) -> Result<Branding, portal_store::StoreError> {
        let mut b = Branding {
            retention_days: DEFAULT_RETENTION_DAYS,
            ..Branding::default()
        };
        for (key, value, _) in store.settings().await? {
            match key.as_str() {
                SCHOOL_NAME => b.school_name = Some(value),
                PRIMARY_COLOR => b.primary_color = Some(value),
                LOGO_VERSION => b.logo_version = value.parse().ok(),
                AUDIT_RETENTION_DAYS => b.retention_days = value.parse().unwrap_or(DEFAULT_RETENTION_DAYS),
                _ => {}
            }
        }
        Ok(b)
    }
}

tokio::task_local! {
    static CURRENT: Arc<Branding>;
}

fn current() -> Option<Arc<Branding>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// The school's name for templates, if set.
pub(crate) fn school_name() -> Option<String> {
    current().and_then(|b| b.school_name.clone())
}

/// The logo's URL (versioned, so a new logo shows at once), if there is one.
pub(crate) fn logo_url() -> Option<String> {
    current()
        .and_then(|b| b.logo_version)
        .map(|v| format!("/branding/logo?v={v}"))
}

/// A version for `/branding.css`, so a colour change reaches browsers at once.
pub(crate) fn version() -> String {
    current()
        .and_then(|b| b.primary_color.clone())
        .unwrap_or_default()
        .trim_start_matches('#')
        .to_owned()
}

/// Middleware: the branding for the pages rendered while handling this request. A layer on
/// the page sub-router only; the API, assets and desktops render no page and skip the query.
pub(crate) async fn scope(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let branding = match Branding::load(&state.store).await {
        Ok(b) => b,
        Err(e) => {
            // Pages still work, unbranded; the error page itself must not fail on this.
            tracing::warn!(error = %e, "loading the branding failed");
            Branding::default()
        }
    };
    CURRENT.scope(Arc::new(branding), next.run(req)).await
}

/// `#rrggbb` (case-insensitive) → lowercase; anything else is refused.
pub(crate) fn parse_color(value: &str) -> Result<String, AdminError> {
    let v = value.trim();
    let hex = v.strip_prefix('#').unwrap_or("");
    if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(AdminError::Invalid(format!(
            "primary_color: {v:?} is not a colour like #0b62c4 (# and six hex digits)"
        )))
    }
}

/// Whether dark text reads better than white on `color` (`#rrggbb`), by WCAG luminance.
fn is_light(color: &str) -> bool {
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(color.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0)) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5) > 0.4
}

/// `GET /branding.css`: the primary colour as the stylesheet's accent variable.
pub(crate) async fn stylesheet(State(state): State<AppState>) -> Result<Response, AppError> {
    let color = state.store.setting(PRIMARY_COLOR).await?;
    let mut css = String::from("/* The school's colour, set on the admin page. */\n");
    // Stored values were validated; checked again since this goes into CSS.
    if let Some(color) = color.and_then(|c| parse_color(&c).ok()) {
        css.push_str(&format!(":root {{ --accent: {color}; }}\n"));
        if is_light(&color) {
            css.push_str(".bar, .bar a, .bar button.link, .viewbar, .viewbar a, button, .button { color: #1d2433; }\n");
        }
    }
    Ok((
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            // Pages link it with the colour as version.
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        css,
    )
        .into_response())
}

/// `GET /branding/logo`.
pub(crate) async fn logo(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let image = state.store.image(LOGO).await?.ok_or(AppError::NotFound)?;
    Ok(image_response(
        &headers,
        image.content_type,
        image.data,
        image.updated_at,
    ))
}

#[derive(Template)]
#[template(path = "admin_branding.html")]
pub(crate) struct BrandingPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub section: &'static str,
    pub school_name: String,
    pub primary_color: String,
    pub has_logo: bool,
    pub retention_days: i64,
    pub max_kib: usize,
}

/// `GET /admin/branding`.
pub(crate) async fn show(State(state): State<AppState>, admin: Admin, lang: Lang) -> Result<Html<String>, AppError> {
    let b = Branding::load(&state.store).await?;
    html(&BrandingPage {
        lang,
        me: Me::new(&admin.0),
        section: "branding",
        school_name: b.school_name.unwrap_or_default(),
        primary_color: b.primary_color.unwrap_or_else(|| "#0b62c4".into()),
        has_logo: b.logo_version.is_some(),
        retention_days: b.retention_days,
        max_kib: crate::web::uploads::MAX_IMAGE_BYTES / 1024,
    })
}

/// `POST /admin/branding`: school name, colour, audit retention.
pub(crate) async fn save(
    State(state): State<AppState>,
    AdminForm { admin, form, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    let name = form.get("school_name").trim();
    if name.chars().count() > MAX_SCHOOL_NAME_CHARS {
        return Err(AdminError::Invalid(format!(
            "school_name: at most {MAX_SCHOOL_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "school_name: must not contain control characters".into(),
        ));
    }
    let color = parse_color(form.get("primary_color"))?;
    let days_text = form.get("audit_retention_days").trim();
    let days: i64 = match days_text.parse() {
        Ok(d) if (1..=3650).contains(&d) => d,
        _ => {
            return Err(AdminError::Invalid(format!(
                "audit_retention_days: {days_text:?} is not a whole number of days from 1 to 3650"
            )));
        }
    };
    let store = &state.store;
    store
        .set_setting(SCHOOL_NAME, Some(name).filter(|n| !n.is_empty()))
        .await?;
    store.set_setting(PRIMARY_COLOR, Some(&color)).await?;
    store.set_setting(AUDIT_RETENTION_DAYS, Some(&days.to_string())).await?;
    let detail = format!("branding: school name {name:?}, colour {color}, audit retention {days} days");
    admin
        .on_target(&state, AuditKind::SettingsChanged, "branding", detail)
        .await;
    Ok(Redirect::to("/admin/branding"))
}

/// `POST /admin/branding/logo` (multipart: `csrf_token` first, then `file`).
pub(crate) async fn upload_logo(
    State(state): State<AppState>,
    admin: Admin,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Redirect, AdminError> {
    let (file, content_type) = crate::web::uploads::read_image_form(multipart).await?;
    state.store.put_image(LOGO, content_type, &file).await?;
    state
        .store
        .set_setting(LOGO_VERSION, Some(&crate::domain::unix_now().to_string()))
        .await?;
    let detail = format!("logo uploaded ({content_type}, {} bytes)", file.len());
    admin
        .on_target(&state, AuditKind::SettingsChanged, "logo", detail)
        .await;
    Ok(Redirect::to("/admin/branding"))
}

/// `POST /admin/branding/logo/delete`.
pub(crate) async fn delete_logo(
    State(state): State<AppState>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    state.store.delete_image(LOGO).await?;
    state.store.set_setting(LOGO_VERSION, None).await?;
    admin
        .on_target(&state, AuditKind::SettingsChanged, "logo", "logo removed")
        .await;
    Ok(Redirect::to("/admin/branding"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours() {
        assert_eq!(parse_color(" #0B62C4 ").ok().as_deref(), Some("#0b62c4"));
        for bad in [
            "",
            "0b62c4",
            "#0b62c",
            "#0b62c4ff",
            "#gggggg",
            "red",
            "#0b62c4;}body{x:y",
        ] {
            assert!(parse_color(bad).is_err(), "{bad}");
        }
        assert!(is_light("#ffff00"));
        assert!(!is_light("#0b62c4"));
    }
}
