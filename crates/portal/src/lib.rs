//! The portal: configuration, routes (pages, JSON API, desktop proxy), sign-in and sessions.
//!
//! `main.rs` is short; this file builds the state and the router and runs them on a given
//! listener, so tests can bind port 0 and start the real thing.

mod admin;
mod admin_audit;
mod admin_types;
mod admin_users;
mod api;
pub mod auth;
mod branding;
mod catalog;
pub mod client_addr;
pub mod config;
mod dashboard;
mod desktop;
mod error;
mod events;
mod health;
pub mod i18n;
pub mod lifecycle;
mod login;
pub mod metrics;
mod metrics_server;
pub mod oidc;
mod pages;
mod security_headers;
pub mod server;
mod teacher;
mod uploads;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use config::RuntimeKind;
use desktop_proxy::{Proxy, ProxyConfig, RouteTable, Target};
use desktop_runtime::{ContainerRuntime, DockerRuntime, DockerSettings, RunningDesktop, StaticRuntime};
use portal_store::Store;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::AppError;

/// Shared state of the portal; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Arc<Config>,
    pub store: Store,
    pub routes: Arc<RouteTable>,
    pub proxy: Proxy,
    /// Where per-user desktops run (Docker), or the static backend.
    pub runtime: Arc<dyn ContainerRuntime>,
    pub desktops: Arc<lifecycle::Lifecycle>,
    /// The only origin allowed to open desktop WebSockets and to post forms.
    pub public_origin: String,
    /// The public URL is https (cookies get Secure and `__Host-`).
    pub https: bool,
    pub cookies: auth::CookieNames,
    login_limiter: login::LoginLimiter,
    /// Image pulls admins started, with their live progress.
    pub(crate) pulls: Arc<admin_types::Pulls>,
    /// Sign-in with IServ, when configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// Prometheus metrics, served only on their own listener.
    pub metrics: Arc<metrics::Metrics>,
    metrics_listener: Option<metrics_server::MetricsListener>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Where `/metrics` is served, when metrics are enabled.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listener.as_ref().map(|l| l.addr())
    }

    /// Connects the store (running migrations), sets up the runtime and the proxy, and
    /// loads the routes of desktops that already run.
    pub async fn new(config: Config) -> anyhow::Result<AppState> {
        if config.database_url.is_none() {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
        }
        let store = Store::connect(&config.database_url())
            .await
            .context("opening the database (setting `database_url`)")?;
        catalog::seed(&store, &config)
            .await
            .context("writing desktop types (setting `desktop_types`)")?;
        let static_runtime = StaticRuntime::new(&config.static_desktops)?;
        let runtime: Arc<dyn ContainerRuntime> = match config.runtime {
            RuntimeKind::Static => Arc::new(StaticRuntime::new(&config.static_desktops)?),
            RuntimeKind::Docker => Arc::new(
                DockerRuntime::connect(DockerSettings {
                    host: config.docker.host.clone(),
                    instance: config.docker.instance.clone(),
                    network: config.docker.network.clone(),
                    publish_loopback: config.docker.publish_loopback,
                    pull_timeout: Duration::from_secs(config.docker.start_timeout_secs),
                    container_prefix: config.docker.container_prefix(),
                })
                .await
                .context("setting up the Docker runtime (section `docker`)")?,
            ),
        };
        catalog::offer_local_desktop(&store, &config, runtime.as_ref())
            .await
            .context("offering the locally built desktop type")?;
        let p = &config.proxy;
        let proxy = Proxy::new(ProxyConfig {
            connect_timeout: Duration::from_secs(p.connect_timeout_secs),
            response_timeout: Duration::from_secs(p.response_timeout_secs),
            idle_timeout: Duration::from_secs(p.idle_timeout_secs),
            relay_buffer_size: p.relay_buffer_bytes,
        })?;
        let public_url = config.public_url();
        let https = public_url.scheme() == "https";
        let config = Arc::new(config);
        let routes = Arc::new(RouteTable::new());
        for desktop in static_runtime.running().await? {
            routes.insert(target_for(desktop));
        }
        let metrics = Arc::new(metrics::Metrics::new(proxy.relay_counters().clone()));
        let metrics_listener = metrics_server::MetricsListener::bind(&config.metrics)?;
        let desktops = Arc::new(
            lifecycle::Lifecycle::new(
                store.clone(),
                runtime.clone(),
                routes.clone(),
                proxy.clone(),
                config.clone(),
            )
            .with_metrics(metrics.clone()),
        );
        // Routes of desktops that survived a portal restart work at once. An unreachable
        // engine is not fatal: the portal serves everything else, and the event follower
        // reconciles once the engine answers.
        if let Err(e) = desktops.reconcile().await {
            tracing::warn!(error = %e, "could not reconcile desktops with the runtime at start");
        }
        // Does not contact IServ: it may be down now and come up later.
        let oidc =
            oidc::Oidc::new(&config.oidc, &config.public_url()).context("setting up IServ sign-in (section `oidc`)")?;
        Ok(AppState(Arc::new(Inner {
            public_origin: config.public_origin(),
            https,
            cookies: auth::CookieNames::new(https),
            config,
            store,
            routes,
            proxy,
            runtime,
            desktops,
            login_limiter: login::LoginLimiter::default(),
            pulls: Arc::default(),
            oidc,
            metrics,
            metrics_listener,
        })))
    }
}

/// Turns a static desktop into a proxy route: like a container's, but shared by its
/// configured users and groups.
fn target_for(d: RunningDesktop) -> Target {
    let mut target = lifecycle::target_for(&d.id, "", d.endpoint, d.credentials);
    target.name = d.name;
    target.owners = d.audience.users;
    target.groups = d.audience.groups;
    target
}

/// Form posts to the portal itself are small; desktop uploads have their own limit.
const FORM_BODY_LIMIT: usize = 64 * 1024;

/// The whole application as a router.
pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/auth/login", get(oidc::callback::login))
        .route(oidc::CALLBACK_PATH, get(oidc::callback::callback))
        .route("/desktops/start", post(dashboard::start_form))
        .route("/desktops/{id}/{action}", post(dashboard::desktop_form))
        .route("/teacher", get(teacher::show))
        .route("/teacher/students", get(teacher::students))
        .route("/teacher/grants", post(teacher::grant))
        .route("/teacher/grants/remove", post(teacher::revoke))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT));
    Router::new()
        .merge(pages)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/portal.css", get(pages::stylesheet))
        .route("/static/portal.js", get(pages::script))
        .route("/view/{id}", get(dashboard::view))
        .route("/desktops/{id}", get(dashboard::view))
        .route("/static/{file}", get(pages::asset))
        .route("/admin", get(admin::show))
        .merge(admin_routes())
        .merge(api_routes())
        .route("/desktop/{id}", any(desktop::bare))
        .route("/desktop/{id}/", any(desktop::proxy_path))
        .route("/desktop/{id}/{*rest}", any(desktop::proxy_path))
        .route("/websockify", any(desktop::root_websockify))
        .fallback(|| async { AppError::NotFound })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::language_switch,
        ))
        .layer(axum::middleware::from_fn(error::render_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), branding::scope))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            security_headers::for_config(&state.config),
            security_headers::apply,
        ))
        .with_state(state)
}

/// The admin pages (forms), their JSON helpers, and the branding and icon assets.
fn admin_routes() -> Router<AppState> {
    let forms = Router::new()
        .route("/admin/desktops", post(admin::act))
        .route("/admin/types", get(admin_types::list_page).post(admin_types::create))
        .route("/admin/types/new", get(admin_types::new_page))
        .route(
            "/admin/types/{key}",
            get(admin_types::edit_page).post(admin_types::update),
        )
        .route("/admin/types/{key}/enabled", post(admin_types::set_enabled))
        .route("/admin/types/{key}/delete", post(admin_types::delete))
        .route("/admin/types/{key}/icon/delete", post(admin_types::delete_icon))
        .route("/admin/types/{key}/pull", post(admin_types::pull_form))
        .route("/admin/users", get(admin_users::list_page).post(admin_users::create))
        .route("/admin/users/{username}/password", post(admin_users::reset_password))
        .route("/admin/users/{username}/role", post(admin_users::set_role))
        .route("/admin/users/{username}/delete", post(admin_users::delete))
        .route("/admin/audit", get(admin_audit::show))
        .route("/admin/branding", get(branding::show).post(branding::save))
        .route("/admin/branding/logo/delete", post(branding::delete_logo))
        .route("/api/admin/desktops/stats", get(admin::stats))
        .route("/api/admin/desktop-types/{key}/pull", post(admin_types::pull_api))
        .route(
            "/api/admin/desktop-types/{key}/pull/events",
            get(admin_types::pull_events),
        )
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT));
    let uploads = Router::new()
        .route("/admin/types/{key}/icon", post(admin_types::upload_icon))
        .route("/admin/branding/logo", post(branding::upload_logo))
        .layer(DefaultBodyLimit::max(uploads::UPLOAD_BODY_LIMIT));
    forms
        .merge(uploads)
        .route("/icons/{key}", get(uploads::icon))
        .route("/branding.css", get(branding::stylesheet))
        .route("/branding/logo", get(branding::logo))
}

fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/api/desktop-types", get(api::desktop_types))
        .route("/api/events", get(events::stream))
        .route("/api/desktops", get(api::list).post(api::start))
        .route("/api/desktops/{id}", get(api::show).delete(api::remove))
        .route("/api/desktops/{id}/events", get(api::events))
        .route("/api/desktops/{id}/stop", post(api::stop))
        .route("/api/desktops/{id}/activity", post(api::activity))
        .route("/api/admin/desktops", get(api::admin_list))
        // Admins act on any desktop through the same handlers (`owned` allows them).
        .route("/api/admin/desktops/{id}", get(api::show).delete(api::remove))
        .route("/api/admin/desktops/{id}/stop", post(api::stop))
        .route("/api/admin/stop-all", post(api::admin_stop_all))
        .route("/api/admin/cleanup-stopped", post(api::admin_cleanup))
        .route(
            "/api/admin/users/{username}/end-sessions",
            post(auth::end_user_sessions),
        )
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .route("/api/{*rest}", any(|| async { AppError::NotFound }))
}

/// Runs the portal on `listener` until `shutdown` completes, with its background work:
/// following the runtime's events and stopping idle desktops.
pub async fn run(state: AppState, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let limits = server::ServerLimits {
        max_header_bytes: state.config.proxy.max_header_bytes,
        header_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(10),
    };
    let mut background = tokio::task::JoinSet::new();
    if let Some(metrics) = state.metrics_listener.as_ref().and_then(|l| l.take()) {
        background.spawn(metrics_server::serve(state.clone(), metrics));
    }
    background.spawn(expire_sessions(state.store.clone(), state.config.session_idle()));
    background.spawn(admin_audit::prune_hourly(state.store.clone()));
    if let Some(oidc) = state.oidc.clone() {
        background.spawn(oidc.warm_up());
    }
    if state.runtime.starts_desktops() {
        background.spawn(state.desktops.clone().follow_events());
        background.spawn(state.desktops.clone().run_culler());
    }
    let result = server::serve(listener, router(state), limits, shutdown).await;
    background.abort_all();
    result
}

/// Deletes expired sessions hourly; lookups ignore them anyway, this only keeps the table small.
async fn expire_sessions(store: Store, idle: Option<Duration>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let idle_deleted = match idle {
            Some(idle) => store.delete_idle_sessions(idle).await,
            None => Ok(0),
        };
        match (store.delete_expired_sessions().await, idle_deleted) {
            (Ok(0), Ok(0)) => {}
            (Ok(expired), Ok(idle)) => tracing::info!(expired, idle, "deleted old sessions"),
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "deleting old sessions failed"),
        }
    }
}

/// Installs the TLS crypto provider for the process. Both `ring` and `aws-lc-rs` may end up
/// in the dependency tree, and rustls then refuses to guess; call this first in `main` and
/// in tests.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
