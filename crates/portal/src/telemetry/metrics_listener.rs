//! The metrics listener: `GET /metrics` on its own address (loopback by default), so the
//! public router can never serve them, whatever a reverse proxy forwards.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::CONTENT_TYPE;

use portal_store::Store;

use super::metrics::Metrics;
use crate::config::MetricsSettings;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The bound metrics socket, bound when the state is made (so a taken port fails the start
/// and tests learn the port) and served by [`crate::run`].
pub(crate) struct MetricsListener {
    addr: SocketAddr,
    listener: Mutex<Option<std::net::TcpListener>>,
}

impl MetricsListener {
    /// Binds `metrics.listen` if metrics are enabled.
    pub(crate) fn bind(settings: &MetricsSettings) -> anyhow::Result<Option<MetricsListener>> {
        if !settings.enabled {
            return Ok(None);
        }
        let listener = std::net::TcpListener::bind(settings.listen)
            .with_context(|| format!("binding {} (setting `metrics.listen`)", settings.listen))?;
        listener.set_nonblocking(true)?;
        Ok(Some(MetricsListener {
            addr: listener.local_addr()?,
            listener: Mutex::new(Some(listener)),
        }))
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The socket, once: a second `run` on the same state has none to serve.
    pub(crate) fn take(&self) -> Option<std::net::TcpListener> {
        self.listener.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Serves `/metrics` on `listener` until the task is aborted.
pub(crate) async fn serve(metrics: Arc<Metrics>, store: Store, listener: std::net::TcpListener) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "metrics listener unusable; no metrics are served");
            return;
        }
    };
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state((metrics, store));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics listener stopped");
    }
}

async fn scrape(State((metrics, store)): State<(Arc<Metrics>, Store)>) -> Response {
    match metrics.render(&store).await {
        Ok(text) => ([(CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "scrape failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics unavailable, see the portal's log\n",
            )
                .into_response()
        }
    }
}
