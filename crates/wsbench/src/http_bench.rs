//! `wsbench http`: GETs of one page, one or several at a time; latency percentiles and
//! requests per second.
//!
//! Keep-alive is used wherever the server allows it (the portal does; KasmVNC and the fake
//! close after every response, so each direct request is a new TCP and TLS connection).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use clap::Args;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::stats::{Summary, summarize};
use crate::target::{Endpoint, Target};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REQUESTS: usize = 100_000;

#[derive(Args, Debug)]
pub(crate) struct HttpArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// Measured requests, one after another.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Unmeasured requests first.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Requests in flight at once, each on its own keep-alive connection where the server
    /// allows it.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// What the request tasks share.
struct Job {
    client: HttpsClient,
    target: Target,
    /// Requests handed out so far.
    next: AtomicUsize,
}

/// Sends GETs one after another until `total` have been handed out (over all tasks);
/// returns the latencies in nanoseconds and the last body's length.
async fn fetch_loop(job: Arc<Job>, total: usize) -> anyhow::Result<(Vec<u64>, usize)> {
    let target = &job.target;
    let mut samples = Vec::new();
    let mut body_bytes = 0;
    while job.next.fetch_add(1, Ordering::Relaxed) < total {
        let mut req = Request::get(target.url.as_str())
            .header("User-Agent", "wsbench")
            .header("Host", target.host.as_str());
        if let Some(auth) = &target.authorization {
            req = req.header("Authorization", auth);
        }
        if let Some(cookie) = &target.cookie {
            req = req.header("Cookie", cookie);
        }
        let req = req.body(Empty::new())?;
        let t0 = Instant::now();
        let fetch = async {
            let resp = job.client.request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body.len()))
        };
        let (status, len) = tokio::time::timeout(REQUEST_TIMEOUT, fetch)
            .await
            .with_context(|| format!("GET {} took over {REQUEST_TIMEOUT:?}", target.url))?
            .with_context(|| format!("GET {}", target.url))?;
        ensure!(status == StatusCode::OK, "GET {} answered {status}", target.url);
        body_bytes = len;
        samples.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    Ok((samples, body_bytes))
}

/// Output of `wsbench http`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HttpResult {
    pub(crate) mode: String,
    pub(crate) label: String,
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) concurrency: usize,
    pub(crate) latency: Summary,
    pub(crate) requests_per_s: f64,
    pub(crate) body_bytes: usize,
}

pub(crate) async fn run(args: &HttpArgs) -> anyhow::Result<()> {
    ensure!(
        (1..=MAX_REQUESTS).contains(&args.requests) && args.warmup <= MAX_REQUESTS,
        "--requests must be 1–{MAX_REQUESTS}"
    );
    ensure!((1..=256).contains(&args.concurrency), "--concurrency must be 1–256");
    let target = Target::parse(&args.endpoint, false)?;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(desktop_proxy::unverified_tls_config()?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    // Title-case names: KasmVNC matches `Authorization: Basic ` case-sensitively.
    let client: HttpsClient = Client::builder(TokioExecutor::new())
        .http1_title_case_headers(true)
        .build(https);

    let job = Arc::new(Job {
        client,
        target,
        next: AtomicUsize::new(0),
    });
    // Warm-up on one connection, then the measured part on `concurrency` keep-alive ones.
    fetch_loop(job.clone(), args.warmup).await?;
    job.next.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..args.concurrency.min(args.requests) {
        tasks.spawn(fetch_loop(job.clone(), args.requests));
    }
    let mut samples = Vec::with_capacity(args.requests);
    let mut body_bytes = 0;
    while let Some(joined) = tasks.join_next().await {
        let (part, len) = joined.context("request task panicked")??;
        samples.extend(part);
        body_bytes = len;
    }
    let wall = started.elapsed();
    let result = HttpResult {
        mode: "http".into(),
        label: args.endpoint.label.clone(),
        url: job.target.url.to_string(),
        concurrency: args.concurrency,
        requests_per_s: samples.len() as f64 / wall.as_secs_f64().max(1e-9),
        latency: summarize(samples),
        body_bytes,
    };
    let s = &result.latency;
    eprintln!(
        "[{}] HTTP GET × {}, {} at once: p50 {:.1} µs  p90 {:.1}  p99 {:.1}  max {:.1}  ({:.0} req/s, {} B body)",
        result.label,
        s.count,
        result.concurrency,
        s.p50_us,
        s.p90_us,
        s.p99_us,
        s.max_us,
        result.requests_per_s,
        result.body_bytes
    );
    crate::emit(&result)
}
