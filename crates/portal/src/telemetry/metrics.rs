//! Prometheus metrics: desktops by state and type, start durations, the start queue's length
//! and waits, proxied WebSockets and their bytes, HTTP request durations by matched route,
//! sign-ins.
//!
//! One registry per portal (no global recorder), so tests can run several portals in one
//! process. Served only by `metrics_server` on its own listener, never on the public router.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use desktop_proxy::RelayCounters;
use http::{Method, StatusCode};
use portal_store::{DesktopState, Store, StoreError};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric as _, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Scraping failed; the scrape answers 500 and the log says why.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("reading desktops for the metrics: {0}")]
    Store(#[from] StoreError),
    #[error("encoding the metrics")]
    Encode(#[from] std::fmt::Error),
}

/// Label values are written in snake case, as Prometheus users expect.
macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                let text = match self {
                    $(Self::$variant => $text,)*
                };
                EncodeLabelValue::encode(&text, encoder)
            }
        }
    };
}

label_enum! {
    /// How a sign-in was attempted.
    SignInMethod {
        /// The local account form.
        Local => "local",
        /// IServ (OpenID Connect).
        Oidc => "oidc",
    }
}

label_enum! {
    /// How a sign-in ended.
    SignInOutcome {
        Success => "success",
        /// Wrong password, or the identity provider said no.
        Failure => "failure",
        /// Refused by the brake on password guessing.
        Blocked => "blocked",
        /// Something on our side or the provider's failed (not the user's fault).
        Error => "error",
    }
}

label_enum! {
    /// How a desktop start ended.
    StartOutcome {
        Ready => "ready",
        Failed => "failed",
        /// `docker.start_timeout_secs` passed first.
        Timeout => "timeout",
        /// Stopped by its user or an admin while it was starting.
        Cancelled => "cancelled",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    /// The route as written in the router (`/desktop/{id}/{*rest}`), never the raw path, so
    /// the number of series stays bounded.
    route: String,
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StartLabels {
    outcome: StartOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignInLabels {
    method: SignInMethod,
    outcome: SignInOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DesktopLabels {
    state: &'static str,
    r#type: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn http_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

fn start_histogram() -> Histogram {
    // From a cached image in about a second to a large pull over minutes.
    Histogram::new([0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0])
}

/// The portal's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http: HistogramFamily<HttpLabels>,
    starts: HistogramFamily<StartLabels>,
    sign_ins: Family<SignInLabels, Counter>,
    desktops: Family<DesktopLabels, Gauge>,
    /// Starts waiting in the start queue now (`domain::start_queue`).
    queue_length: Gauge,
    /// How long starts waited in the start queue for their turn.
    queue_wait: Histogram,
    /// 1 while this portal leads the background work (`domain::replicas`), else 0.
    leader: Gauge,
    /// Serialises scrapes: the desktop gauges are refilled from the store for each one.
    scrape: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Arc::default())
    }
}

impl Metrics {
    /// Metrics reading the relay counters of the portal's proxy.
    pub fn new(relays: Arc<RelayCounters>) -> Self {
        let mut registry = Registry::with_prefix("ird");
        let http = HistogramFamily::<HttpLabels>::new_with_constructor(http_histogram as fn() -> Histogram);
        let starts = HistogramFamily::<StartLabels>::new_with_constructor(start_histogram as fn() -> Histogram);
        let sign_ins = Family::<SignInLabels, Counter>::default();
        let desktops = Family::<DesktopLabels, Gauge>::default();
        let queue_length = Gauge::default();
        let queue_wait = start_histogram();
        let leader = Gauge::default();
        registry.register(
            "http_request_duration_seconds",
            "Time until the response head, by matched route, method and status class",
            http.clone(),
        );
        registry.register(
            "desktop_start_duration_seconds",
            "From the start's turn (after any wait in the start queue) until the desktop answers (or the start ends otherwise), by outcome",
            starts.clone(),
        );
        registry.register("sign_ins", "Sign-in attempts by method and outcome", sign_ins.clone());
        registry.register(
            "desktops",
            "Desktops known to the store, by state and type",
            desktops.clone(),
        );
        registry.register(
            "start_queue_length",
            "Desktop starts waiting for their turn (beyond limits.max_concurrent_starts)",
            queue_length.clone(),
        );
        registry.register(
            "start_queue_wait_seconds",
            "How long desktop starts waited in the start queue (also cancelled ones)",
            queue_wait.clone(),
        );
        registry.register(
            "leader",
            "1 while this portal runs the background work (culling, reconcile, events) for all replicas",
            leader.clone(),
        );
        registry.register_collector(Box::new(RelayCollector(relays)));
        Self {
            registry,
            http,
            starts,
            sign_ins,
            desktops,
            queue_length,
            queue_wait,
            leader,
            scrape: tokio::sync::Mutex::new(()),
        }
    }

    /// Records one sign-in attempt. Called by the local form and the IServ callback.
    pub fn sign_in(&self, method: SignInMethod, outcome: SignInOutcome) {
        self.sign_ins.get_or_create(&SignInLabels { method, outcome }).inc();
    }

    /// Records how long a desktop start took, once it has ended.
    pub fn start_finished(&self, outcome: StartOutcome, took: Duration) {
        self.starts
            .get_or_create(&StartLabels { outcome })
            .observe(took.as_secs_f64());
    }

    /// Sets how many starts wait in the start queue; the queue calls it on every change.
    pub fn start_queue_length(&self, waiting: usize) {
        self.queue_length.set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// Records whether this portal leads the background work now.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Records how long a start waited for its turn, once the wait has ended.
    pub fn start_waited(&self, took: Duration) {
        self.queue_wait.observe(took.as_secs_f64());
    }

    fn http_request(&self, route: &str, method: &Method, status: StatusCode, took: Duration) {
        let labels = HttpLabels {
            route: route.to_owned(),
            method: method_label(method),
            status: status_class(status),
        };
        self.http.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// The OpenMetrics text for one scrape, with desktop counts read from `store` now.
    pub async fn render(&self, store: &Store) -> Result<String, MetricsError> {
        let _one_at_a_time = self.scrape.lock().await;
        let types = store.list_desktop_types().await?;
        let desktops = store.all_desktops().await?;
        // Every (state, type) pair, zeros included: a series that vanishes at 0 reads as
        // "no data" on a dashboard rather than "none".
        let mut counts: BTreeMap<(&'static str, String), i64> = BTreeMap::new();
        for t in &types {
            for state in ALL_STATES {
                counts.insert((state.as_str(), t.key.clone()), 0);
            }
        }
        for d in &desktops {
            *counts.entry((d.state.as_str(), d.type_key.clone())).or_insert(0) += 1;
        }
        self.desktops.clear();
        for ((state, r#type), n) in counts {
            self.desktops.get_or_create(&DesktopLabels { state, r#type }).set(n);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

const ALL_STATES: [DesktopState; 5] = [
    DesktopState::Starting,
    DesktopState::Running,
    DesktopState::Stopping,
    DesktopState::Stopped,
    DesktopState::Failed,
];

/// Anything a client can put in the method slot would make a new series; keep them bounded.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Middleware: times every request of the public router by its matched route. Requests no
/// route matched (404s from the fallback) share the route label `unmatched`.
pub(crate) async fn track_requests(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", |r| r.as_str());
    metrics.http_request(route, &method, resp.status(), started.elapsed());
    resp
}

/// Reads the proxy's relay counters at scrape time.
#[derive(Debug)]
struct RelayCollector(Arc<RelayCounters>);

impl Collector for RelayCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let open = ConstGauge::new(self.0.open() as i64);
        open.encode(encoder.encode_descriptor(
            "proxy_websockets_open",
            "Desktop WebSockets being relayed now",
            None,
            open.metric_type(),
        )?)?;
        let probe = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "proxy_websocket_bytes",
            "Bytes relayed over desktop WebSockets, by direction",
            None,
            probe.metric_type(),
        )?;
        for (direction, bytes) in [
            ("client_to_desktop", self.0.client_to_desktop()),
            ("desktop_to_client", self.0.desktop_to_client()),
        ] {
            let labels = [("direction", direction)];
            ConstCounter::new(bytes).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_and_statuses_fall_into_bounded_labels() {
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(status_class(StatusCode::SWITCHING_PROTOCOLS), "1xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::BAD_GATEWAY), "5xx");
    }
}
