//! `wsbench connect`: WebSocket set-up rate — TCP connect, (TLS,) upgrade through the
//! portal's session and Origin checks, the upstream's TLS and upgrade, and the RFB greeting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, ensure};
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::stats::{Summary, summarize};
use crate::target::{Endpoint, Target};
use crate::ws::{Connector, close};

const MAX_CONNECTIONS: usize = 100_000;

#[derive(Args, Debug)]
pub(crate) struct ConnectArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// WebSockets opened (and closed again) in the measured part.
    #[arg(long, default_value_t = 2000)]
    connections: usize,
    /// Unmeasured ones first.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Set-ups in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

/// Output of `wsbench connect`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ConnectResult {
    pub(crate) mode: String,
    pub(crate) label: String,
    pub(crate) url: String,
    pub(crate) concurrency: usize,
    /// From the first TCP connect to the RFB greeting, per WebSocket.
    pub(crate) setup: Summary,
    pub(crate) per_s: f64,
}

pub(crate) async fn run(args: &ConnectArgs) -> anyhow::Result<()> {
    ensure!(
        (1..=MAX_CONNECTIONS).contains(&args.connections) && args.warmup <= MAX_CONNECTIONS,
        "--connections must be 1–{MAX_CONNECTIONS}"
    );
    ensure!((1..=256).contains(&args.concurrency), "--concurrency must be 1–256");
    // Set-up only: a small read buffer keeps the client's own allocation out of the way.
    let connector = Arc::new(Connector::new(Target::parse(&args.endpoint, true)?)?.with_read_buffer(4096));
    churn(&connector, args.warmup, args.concurrency).await?;
    let started = Instant::now();
    let samples = churn(&connector, args.connections, args.concurrency).await?;
    let wall = started.elapsed();
    let result = ConnectResult {
        mode: "connect".into(),
        label: args.endpoint.label.clone(),
        url: connector.target().url.to_string(),
        concurrency: args.concurrency,
        per_s: samples.len() as f64 / wall.as_secs_f64().max(1e-9),
        setup: summarize(samples),
    };
    let s = &result.setup;
    eprintln!(
        "[{}] WebSocket set-up × {}, {} at once: p50 {:.1} µs  p99 {:.1}  ({:.0}/s)",
        result.label, s.count, result.concurrency, s.p50_us, s.p99_us, result.per_s
    );
    crate::emit(&result)
}

/// Opens and closes `n` WebSockets, `concurrency` at a time; set-up times in nanoseconds.
async fn churn(connector: &Arc<Connector>, n: usize, concurrency: usize) -> anyhow::Result<Vec<u64>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency.min(n) {
        let (connector, next) = (connector.clone(), next.clone());
        tasks.spawn(async move {
            let mut samples = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let t0 = Instant::now();
                let ws = connector.connect().await?;
                samples.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
                close(ws).await;
            }
            anyhow::Ok(samples)
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.context("connect task panicked")??);
    }
    Ok(all)
}
