//! The portal: configuration, routes (pages, JSON API, desktop proxy), sign-in and sessions.
//!
//! `main.rs` is short; this file builds the state and the router and runs them on a given
//! listener, so tests can bind port 0 and start the real thing.

pub mod auth;
pub mod config;
mod dashboard;
mod desktop;
mod error;
mod health;
pub mod i18n;
mod login;
mod pages;
pub mod server;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use desktop_proxy::{BasicAuth, Proxy, ProxyConfig, RouteTable, Scheme, Target};
use desktop_runtime::{ContainerRuntime, RunningDesktop, StaticRuntime};
use portal_store::Store;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::AppError;

/// Shared state of the portal; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub routes: Arc<RouteTable>,
    pub proxy: Proxy,
    pub runtime: Arc<dyn ContainerRuntime>,
    /// The only origin allowed to open desktop WebSockets and to post forms.
    pub public_origin: String,
    /// The public URL is https (cookies get Secure and `__Host-`).
    pub https: bool,
    pub cookies: auth::CookieNames,
    login_limiter: login::LoginLimiter,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
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
        let runtime: Arc<dyn ContainerRuntime> = Arc::new(StaticRuntime::new(&config.static_desktops)?);
        let p = &config.proxy;
        let proxy = Proxy::new(ProxyConfig {
            connect_timeout: Duration::from_secs(p.connect_timeout_secs),
            response_timeout: Duration::from_secs(p.response_timeout_secs),
            idle_timeout: Duration::from_secs(p.idle_timeout_secs),
            relay_buffer_size: p.relay_buffer_bytes,
        })?;
        let public_url = config.public_url();
        let https = public_url.scheme() == "https";
        let state = AppState(Arc::new(Inner {
            public_origin: config.public_origin(),
            https,
            cookies: auth::CookieNames::new(https),
            config,
            store,
            routes: Arc::new(RouteTable::new()),
            proxy,
            runtime,
            login_limiter: login::LoginLimiter::default(),
        }));
        state.load_routes().await?;
        Ok(state)
    }

    /// Rebuilds the routing table from what the runtime says is running.
    pub async fn load_routes(&self) -> anyhow::Result<()> {
        for desktop in self.runtime.running().await? {
            self.routes.insert(target_for(desktop));
        }
        Ok(())
    }
}

/// Turns the runtime's view of a desktop into a proxy route.
fn target_for(d: RunningDesktop) -> Target {
    Target {
        desktop_id: d.id,
        name: d.name,
        scheme: if d.endpoint.https { Scheme::Https } else { Scheme::Http },
        host: d.endpoint.host,
        port: d.endpoint.port,
        verify_tls: d.endpoint.verify_tls,
        basic_auth: d.credentials.map(|c| BasicAuth {
            username: c.username,
            password: c.password,
        }),
        owners: d.audience.users,
        groups: d.audience.groups,
    }
}

/// Form posts to the portal itself are small; desktop uploads have their own limit.
const FORM_BODY_LIMIT: usize = 64 * 1024;

/// The whole application as a router.
pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT));
    Router::new()
        .merge(pages)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/portal.css", get(pages::stylesheet))
        .route("/desktop/{id}", any(desktop::bare))
        .route("/desktop/{id}/", any(desktop::proxy_path))
        .route("/desktop/{id}/{*rest}", any(desktop::proxy_path))
        .route("/websockify", any(desktop::root_websockify))
        .fallback(|| async { AppError::NotFound })
        .layer(axum::middleware::from_fn(pages::language_switch))
        .layer(axum::middleware::from_fn(error::render_errors))
        .with_state(state)
}

/// Runs the portal on `listener` until `shutdown` completes.
pub async fn run(state: AppState, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let limits = server::ServerLimits {
        max_header_bytes: state.config.proxy.max_header_bytes,
        header_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(10),
    };
    server::serve(listener, router(state), limits, shutdown).await
}

/// Installs the TLS crypto provider for the process. Both `ring` and `aws-lc-rs` may end up
/// in the dependency tree, and rustls then refuses to guess; call this first in `main` and
/// in tests.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
