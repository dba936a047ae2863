//! The portal: configuration, routes (pages, JSON API, desktop proxy), sign-in and sessions.
//!
//! `main.rs` is short; this file wires the layers together and runs them on a given listener,
//! so tests can bind port 0 and start the real thing. The layers, each importing only those
//! below it (a test checks this; see ARCHITECTURE.md):
//!
//! - [`web`]: the router, extractors, pages, JSON API, desktop proxy routes, middleware;
//! - [`state`]: the shared state handlers get;
//! - [`auth`]: sessions, CSRF, the sign-in brake;
//! - [`domain`]: desktop lifecycle, access rules, audit, catalogue, events, pulls (no web);
//! - [`config`], [`telemetry`], [`net`], [`i18n`]: settings, metrics, sockets, texts.

pub mod auth;
pub mod config;
pub mod domain;
pub mod i18n;
pub mod net;
pub mod state;
pub mod telemetry;
pub mod web;

use std::future::Future;
use std::time::Duration;

use portal_store::Store;
use telemetry::metrics_listener;
use tokio::net::TcpListener;

pub use config::Config;
pub use state::AppState;
pub use web::error::AppError;
pub use web::router;

/// Runs the portal on `listener` until `shutdown` completes, with its background work:
/// following the runtime's events and stopping idle desktops.
pub async fn run(state: AppState, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let limits = net::server::ServerLimits {
        max_header_bytes: state.config.proxy.max_header_bytes,
        header_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(10),
        max_connections: state.config.proxy.max_connections,
        max_connections_per_address: state.config.proxy.max_connections_per_address,
        trusted: state.config.proxy.trusted_proxies.clone(),
        // Before any request is read, so in both languages.
        busy_text: all_languages("err_too_many_connections_total"),
        too_many_text: all_languages("err_too_many_connections"),
    };
    let mut background = tokio::task::JoinSet::new();
    if let Some(metrics) = state.metrics_listener.as_ref().and_then(|l| l.take()) {
        background.spawn(metrics_listener::serve(
            state.metrics.clone(),
            state.store.clone(),
            metrics,
        ));
    }
    background.spawn(state.desktop_sessions.clone().sweep_forever(
        state.store.clone(),
        state.routes.clone(),
        state.help.clone(),
        state.config.session_idle(),
    ));
    // Per portal: help requests and grants live in this portal's memory.
    background.spawn(state.help.clone().run(state.desktops.changes.subscribe()));
    background.spawn(state.anonymous_audit.clone().flush_forever(state.store.clone()));
    if let Some(oidc) = state.oidc.clone() {
        background.spawn(oidc.warm_up());
    }
    background.spawn(
        state
            .leadership
            .clone()
            .elect(state.store.clone(), state.metrics.clone()),
    );
    let desktop_sessions = state.desktop_sessions.clone();
    background.spawn(domain::replicas::follow_peers(
        state.store.clone(),
        state.desktops.clone(),
        state.help.clone(),
        Box::new(move || desktop_sessions.sweep_soon()),
    ));
    background.spawn(while_leader(state.clone()));
    let result = net::server::serve(listener, web::router(state), limits, shutdown).await;
    background.abort_all();
    result
}

/// Runs the work that must run once across replicas while this portal leads, and stops it
/// when it no longer does.
async fn while_leader(state: AppState) {
    let mut leading = state.leadership.subscribe();
    loop {
        if leading.wait_for(|l| *l).await.is_err() {
            return;
        }
        let mut jobs = leader_jobs(&state);
        let _ = leading.wait_for(|l| !*l).await;
        jobs.abort_all();
        tracing::info!("stopped the background work: another portal leads now");
    }
}

/// The background work of the leader: idle culling, the runtime's events, sealing hand-ins,
/// purging deleted accounts, pruning the audit log and expired sessions.
fn leader_jobs(state: &AppState) -> tokio::task::JoinSet<()> {
    let mut jobs = tokio::task::JoinSet::new();
    jobs.spawn(expire_sessions(state.store.clone(), state.config.session_idle()));
    jobs.spawn(purge_expired_tickets(state.store.clone()));
    jobs.spawn(domain::audit::prune_hourly(state.store.clone()));
    jobs.spawn(state.handins.clone().run_sealer());
    if state.runtime.starts_desktops() {
        let desktops = state.desktops.clone();
        // A new leader first catches up with what happened while the old one was dying.
        jobs.spawn(async move {
            if let Err(e) = desktops.reconcile().await {
                tracing::warn!(error = %e, "reconciling desktops on taking the lead failed");
            }
            desktops.follow_events().await;
        });
        jobs.spawn(state.desktops.clone().run_culler());
    }
    jobs.spawn(domain::accounts::run_purger(
        state.store.clone(),
        state.runtime.clone(),
        state.config.docker.home_volume_prefix.clone(),
        state.config.files_root(),
        Duration::from_secs(state.config.accounts.purge_interval_secs),
    ));
    jobs
}

/// A message in every language the portal speaks (for answers given before the browser's
/// language is known).
fn all_languages(key: &str) -> String {
    i18n::Lang::all()
        .map(|lang| format!("{}\n", lang.t(key)))
        .collect::<Vec<_>>()
        .join("\n")
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

/// Deletes expired desktop and preview tickets every few minutes (lookups ignore them anyway;
/// this only keeps the tables small).
async fn purge_expired_tickets(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tick.tick().await;
        match store.purge_expired_tickets().await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "deleted expired tickets"),
            Err(e) => tracing::warn!(error = %e, "deleting expired tickets failed"),
        }
    }
}

/// Installs the TLS crypto provider for the process. Both `ring` and `aws-lc-rs` may end up
/// in the dependency tree, and rustls then refuses to guess; call this first in `main` and
/// in tests.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
