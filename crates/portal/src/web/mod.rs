//! The web layer: the router, extractors, error rendering, pages, the JSON API, the desktop
//! proxy routes and middleware. Handlers extract, call into [`crate::domain`], and render.

pub mod admin;
pub mod api;
pub mod assets;
pub mod assignments;
pub mod branding;
pub mod csrf;
pub mod dashboard;
pub mod desktop;
pub mod desktop_host;
pub mod error;
pub mod events;
pub mod extract;
pub mod files;
pub mod health;
pub mod help;
pub mod my_data;
pub mod pages;
pub mod preview;
pub mod redirect;
pub mod screens;
pub mod security_headers;
pub mod signin;
pub mod slow_body;
pub mod teacher;
pub mod teacher_class;
pub mod teacher_lesson;
pub mod time;
pub mod uploads;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get, post};

use crate::state::AppState;
use csrf::{Csrf, Expect};
use error::{AppError, ErrorFormat};

/// Form posts to the portal itself are small; desktop uploads have their own limit.
pub(crate) const FORM_BODY_LIMIT: usize = 64 * 1024;

/// The whole application as a router: sub-routers by kind of response, each with the layers
/// it needs (see each function), under the layers every request gets.
pub fn router(state: AppState) -> Router {
    let security = from_fn_with_state(security_headers::for_config(&state.config), security_headers::apply);
    // Pages: the language switch, branding, error pages (JSON for clients that ask), the
    // portal's security headers. Unknown paths get the page 404.
    let pages = Router::new()
        .merge(page_routes(&state))
        .merge(file_page_routes(&state))
        .merge(admin_routes(&state))
        .fallback(|| async { AppError::NotFound })
        .layer(from_fn_with_state(state.clone(), pages::language_switch))
        .layer(from_fn_with_state(ErrorFormat::Negotiate, error::render_errors))
        .layer(from_fn_with_state(state.clone(), branding::scope))
        .layer(security.clone());
    // The JSON API: errors always JSON; no page, so no branding.
    let api = api_routes(&state)
        .merge(file_api_routes(&state))
        .layer(from_fn_with_state(state.clone(), pages::language_switch))
        .layer(from_fn_with_state(ErrorFormat::Json, error::render_errors))
        .layer(security.clone());
    // Assets and health checks: no language, no branding; the portal's headers.
    let plain = Router::new()
        .merge(asset_routes())
        .merge(health_routes())
        .layer(from_fn_with_state(ErrorFormat::Negotiate, error::render_errors))
        .layer(security);
    Router::new()
        .merge(pages)
        .merge(api)
        .merge(desktop_routes())
        .merge(plain)
        .layer(from_fn_with_state(
            state.metrics.clone(),
            crate::telemetry::metrics::track_requests,
        ))
        // A desktop host's requests never reach the portal's routes or layers.
        .layer(from_fn_with_state(state.clone(), desktop_host::route_by_host))
        // Outermost: every body, the desktops' too, has a read timeout.
        .layer(from_fn_with_state(
            std::time::Duration::from_secs(state.config.proxy.body_timeout_secs),
            slow_body::limit,
        ))
        .with_state(state)
}

/// The session's CSRF token on every state-changing request of a sub-router whose bodies may
/// be `body_limit` long (`csrf.rs`).
fn session_csrf(state: &AppState, body_limit: usize) -> Csrf {
    Csrf::new(state, Expect::Session, body_limit)
}

/// The user's pages and their form posts, and signing in and out.
fn page_routes(state: &AppState) -> Router<AppState> {
    // No session yet: the sign-in form's own token is double-submitted (form field and cookie).
    let sign_in = Router::new()
        .route("/login", get(signin::local::form).post(signin::local::submit))
        .layer(from_fn_with_state(
            Csrf::new(state, Expect::SignInCookie, FORM_BODY_LIMIT),
            csrf::require,
        ))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT));
    // IServ sends the browser back to the registered redirect URI, which a school moving over
    // from the Flask version keeps (`/authorize`); `/auth/callback` always works too.
    let callback = state.oidc.as_ref().map(|o| o.callback_path().to_owned());
    let mut routes = Router::new()
        .route("/", get(dashboard::show))
        .route("/logout", post(signin::local::logout))
        .route("/auth/login", get(signin::iserv::login))
        .route(iserv_oidc::CALLBACK_PATH, get(signin::iserv::callback));
    if let Some(path) = callback.filter(|p| p != iserv_oidc::CALLBACK_PATH) {
        routes = routes.route(&path, get(signin::iserv::callback));
    }
    routes
        .route("/desktops/start", post(dashboard::start_form))
        .route("/desktops/{id}/{action}", post(dashboard::desktop_form))
        .route("/teacher", get(teacher::show))
        .route("/teacher/students", get(teacher::students))
        .route("/teacher/grants", post(teacher::grant))
        .route("/teacher/grants/remove", post(teacher::revoke))
        .route(
            "/teacher/lesson",
            get(teacher_lesson::status).post(teacher_lesson::prepare),
        )
        .route("/teacher/desktops/{id}/stop", post(teacher_class::stop))
        .route("/teacher/desktops/{id}/restart", post(teacher_class::restart))
        .route(
            "/teacher/end-lesson",
            get(teacher_class::confirm_end_lesson).post(teacher_class::end_lesson),
        )
        .route("/teacher/messages", post(teacher_class::send_message))
        .route("/teacher/messages/clear", post(teacher_class::clear_message))
        .route("/teacher/assignments", post(assignments::create))
        .route("/teacher/assignments/{id}", get(assignments::show))
        .route("/teacher/assignments/{id}/delete", post(assignments::delete))
        .route("/teacher/assignments/{id}/due", post(assignments::set_due))
        .route("/help/panel", get(help::panel))
        .route("/help/{id}/{action}", post(help::act))
        .route("/teacher/help", get(help::teacher_list))
        .route("/teacher/help/{id}/offer", post(help::offer))
        .route("/teacher/help/{id}/open", get(help::open))
        .route("/teacher/desktops/{id}/watch", get(screens::watch_page))
        .route("/teacher/desktops/{id}/watch/stream", get(screens::watch_stream))
        .route("/view/{id}", get(dashboard::view))
        .route("/desktops/{id}", get(dashboard::view))
        .route("/admin", get(admin::show))
        .layer(from_fn_with_state(session_csrf(state, FORM_BODY_LIMIT), csrf::require))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .merge(sign_in)
}

/// `/files`: a folder's page is a GET, its forms post to the same URL (a folder may be called
/// anything, so no action gets a path of its own); uploads stream, limited by the files
/// settings while writing, so the limit is named in the answer.
fn file_page_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/files", get(files::index))
        .route("/files/my-data.zip", get(my_data::download))
        .route("/files/{space}", get(files::show))
        .route("/files/{space}/", get(files::show).post(files::submit))
        .route("/files/{space}/{*path}", get(files::show).post(files::submit))
        .route(
            "/teacher/assignments/{id}/feedback/{student}",
            post(assignments::give_feedback),
        )
        .layer(from_fn_with_state(session_csrf(state, FORM_BODY_LIMIT), csrf::require))
        .layer(DefaultBodyLimit::disable())
}

/// The files API; uploads are raw bodies streamed to disk (no body limit here: the space's
/// upload limit and quota apply while writing).
fn file_api_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/files/{space}", get(api::files::root))
        .route(
            "/api/files/{space}/{*path}",
            get(api::files::get)
                .put(api::files::put)
                .post(api::files::post)
                .delete(api::files::delete),
        )
        .route("/api/trash/{space}", get(api::files::trash))
        .route("/api/trash/{space}/{id}/restore", post(api::files::restore))
        .layer(from_fn_with_state(session_csrf(state, FORM_BODY_LIMIT), csrf::require))
        .layer(DefaultBodyLimit::disable())
}

/// The admin pages (forms) and their uploads.
fn admin_routes(state: &AppState) -> Router<AppState> {
    let forms = Router::new()
        .route("/admin/desktops", post(admin::act))
        .route("/admin/types", get(admin::types::list_page).post(admin::types::create))
        .route("/admin/types/new", get(admin::types::new_page))
        .route(
            "/admin/types/{key}",
            get(admin::types::edit_page).post(admin::types::update),
        )
        .route("/admin/types/{key}/enabled", post(admin::types::set_enabled))
        .route("/admin/types/{key}/delete", post(admin::types::delete))
        .route("/admin/types/{key}/icon/delete", post(admin::types::delete_icon))
        .route("/admin/types/{key}/pull", post(admin::types::pull_form))
        .route("/admin/users", get(admin::users::list_page).post(admin::users::create))
        .route("/admin/users/{username}/password", post(admin::users::reset_password))
        .route("/admin/users/{username}/role", post(admin::users::set_role))
        .route("/admin/users/{username}/delete", post(admin::users::delete))
        .route("/admin/users/{username}/link", post(admin::users::allow_link))
        .route("/admin/users/{username}/groups", post(admin::users::set_groups))
        .route("/admin/deleted-users/{id}/restore", post(admin::users::restore))
        .route("/admin/audit", get(admin::audit::show))
        .route("/admin/disk", get(admin::disk::show))
        .route("/admin/branding", get(branding::show).post(branding::save))
        .route("/admin/branding/logo/delete", post(branding::delete_logo))
        .layer(from_fn_with_state(session_csrf(state, FORM_BODY_LIMIT), csrf::require))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT));
    let uploads = Router::new()
        .route("/admin/types/{key}/icon", post(admin::types::upload_icon))
        .route("/admin/branding/logo", post(branding::upload_logo))
        .layer(from_fn_with_state(
            session_csrf(state, uploads::UPLOAD_BODY_LIMIT),
            csrf::require,
        ))
        .layer(DefaultBodyLimit::max(uploads::UPLOAD_BODY_LIMIT));
    forms.merge(uploads)
}

/// JSON under `/api/`; unknown `/api/…` paths answer JSON 404.
fn api_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(api::openapi::serve))
        .route("/api/desktop-types", get(api::desktop_types))
        .route("/api/events", get(events::stream))
        .route("/api/help/events", get(help::events))
        .route("/api/desktops", get(api::list).post(api::start))
        .route("/api/desktops/{id}", get(api::show).delete(api::remove))
        .route("/api/desktops/{id}/events", get(api::events))
        .route("/api/desktops/{id}/stop", post(api::stop))
        .route("/api/desktops/{id}/activity", post(api::activity))
        .route("/api/admin/desktops", get(api::admin_list))
        .route("/api/teacher/desktops/{id}/thumbnail", get(screens::thumbnail))
        // Admins act on any desktop through the same handlers (`owned` allows them).
        .route("/api/admin/desktops/{id}", get(api::show).delete(api::remove))
        .route("/api/admin/desktops/{id}/stop", post(api::stop))
        .route("/api/admin/stop-all", post(api::admin_stop_all))
        .route("/api/admin/cleanup-stopped", post(api::admin_cleanup))
        .route(
            "/api/admin/users/{username}/end-sessions",
            post(admin::users::end_user_sessions),
        )
        .route("/api/admin/desktops/stats", get(admin::stats))
        .route("/api/admin/desktop-types/{key}/pull", post(admin::types::pull_api))
        .route(
            "/api/admin/desktop-types/{key}/pull/events",
            get(admin::types::pull_events),
        )
        .layer(from_fn_with_state(session_csrf(state, FORM_BODY_LIMIT), csrf::require))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .route("/api/{*rest}", any(|| async { AppError::NotFound }))
}

/// The desktops' own traffic on the portal's origin. Their responses come from the desktop and
/// pass untouched: no security headers, language or branding; only the portal's own refusals
/// are rendered. Desktop hosts (`desktop_host`) never get here.
fn desktop_routes() -> Router<AppState> {
    Router::new()
        .route("/desktop/{id}", any(desktop::bare))
        .route("/desktop/{id}/", any(desktop::proxy_path))
        .route("/desktop/{id}/{*rest}", any(desktop::proxy_path))
        .route("/websockify", any(desktop::root_websockify))
        .layer(from_fn_with_state(ErrorFormat::Negotiate, error::render_errors))
}

/// Static files, uploaded icons and the school's logo and colour.
fn asset_routes() -> Router<AppState> {
    Router::new()
        .route("/static/{*file}", get(assets::serve))
        .route("/icons/{key}", get(uploads::icon))
        .route("/branding.css", get(branding::stylesheet))
        .route("/branding/logo", get(branding::logo))
}

fn health_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
}
