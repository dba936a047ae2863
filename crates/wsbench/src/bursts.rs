//! `wsbench bursts`: memory of a long-running proxy under repeated bursts of sessions.
//!
//! A school's portal runs for months; its classes come in bursts. Each burst opens
//! `--sessions` WebSockets at once, has every one echo `--echoes` messages, and closes them
//! all; the VmRSS of the watched processes is sampled after each burst. A leak grows without
//! end; an allocator that keeps freed memory for reuse grows during the first bursts and then
//! stays flat. The result reports the growth over the second half of the series.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use bytes::Bytes;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::idle::{MemorySample, open, sample};
use crate::procstat::parse_watched;
use crate::target::{Endpoint, Target};
use crate::ws::{Connector, recv_binary, send_binary};

#[derive(Args, Debug)]
pub(crate) struct BurstsArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// WebSockets open at once in each burst.
    #[arg(long, default_value_t = 300)]
    sessions: usize,
    /// Messages each WebSocket echoes before it is closed.
    #[arg(long, default_value_t = 10)]
    echoes: usize,
    /// Size of each echoed message: large enough that the relay's buffers grow.
    #[arg(long, default_value_t = 64 * 1024)]
    echo_bytes: usize,
    /// Number of bursts.
    #[arg(long, default_value_t = 15)]
    bursts: usize,
    /// A process to sample, as LABEL=PID (repeatable), e.g. `proxy=1234`.
    #[arg(long = "rss", value_name = "LABEL=PID", required = true)]
    rss: Vec<String>,
    /// Connections opened at once.
    #[arg(long, default_value_t = 32)]
    parallel: usize,
    /// Pause after each burst before sampling, so the proxy's tasks and the allocator settle.
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
}

/// Output of `wsbench bursts`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BurstsResult {
    pub(crate) mode: String,
    pub(crate) label: String,
    pub(crate) url: String,
    pub(crate) sessions: usize,
    pub(crate) echoes: usize,
    pub(crate) echo_bytes: usize,
    /// Before the first burst.
    pub(crate) start: MemorySample,
    /// After each burst, in order.
    pub(crate) after_burst: Vec<MemorySample>,
    /// VmRSS growth per process from the middle of the series to its end, in KiB: ≈ 0 when
    /// memory is flat after warm-up.
    pub(crate) late_growth_kib: BTreeMap<String, i64>,
}

pub(crate) async fn run(args: &BurstsArgs) -> anyhow::Result<()> {
    let processes = parse_watched(&args.rss)?;
    ensure!((1..=5000).contains(&args.sessions), "--sessions must be 1–5000");
    ensure!((2..=1000).contains(&args.bursts), "--bursts must be 2–1000");
    ensure!(args.echoes <= 10_000, "--echoes must be at most 10000");
    ensure!((1..=256).contains(&args.parallel), "--parallel must be 1–256");
    ensure!(
        (1..=16 * 1024 * 1024).contains(&args.echo_bytes),
        "--echo-bytes must be 1 B–16 MiB"
    );
    ensure!(args.settle_ms <= 60_000, "--settle-ms must be at most 60000");
    // Small client read buffers, as in `idle`: the client's memory is not what is measured.
    let connector = Arc::new(Connector::new(Target::parse(&args.endpoint, true)?)?.with_read_buffer(4096));
    let settle = Duration::from_millis(args.settle_ms);
    let label = &args.endpoint.label;
    let start = sample(0, 0, &processes)?;
    eprintln!("[{label}] before the first burst: VmRSS {:?} KiB", start.vm_rss_kib);
    let message = Bytes::from((0..args.echo_bytes).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let mut after_burst = Vec::with_capacity(args.bursts);
    for burst in 1..=args.bursts {
        let mut held = open(&connector, args.sessions, args.parallel).await?;
        for chunk in held.chunks_mut(args.parallel) {
            let echoes = chunk.iter_mut().map(|ws| {
                let message = message.clone();
                async move {
                    for _ in 0..args.echoes {
                        send_binary(ws, message.clone()).await?;
                        ensure!(recv_binary(ws).await? == message, "echo differs");
                    }
                    anyhow::Ok(())
                }
            });
            futures_util::future::try_join_all(echoes).await?;
        }
        drop(held);
        tokio::time::sleep(settle).await;
        let s = sample(0, 0, &processes)?;
        eprintln!("[{label}] after burst {burst}: VmRSS {:?} KiB", s.vm_rss_kib);
        after_burst.push(s);
    }
    let middle = &after_burst[after_burst.len() / 2];
    let end = &after_burst[after_burst.len() - 1];
    let late_growth_kib = end
        .vm_rss_kib
        .iter()
        .map(|(p, &kib)| {
            let mid = middle.vm_rss_kib.get(p).copied().unwrap_or(kib);
            (p.clone(), kib as i64 - mid as i64)
        })
        .collect();
    crate::emit(&BurstsResult {
        mode: "bursts".into(),
        label: label.clone(),
        url: connector.target().url.to_string(),
        sessions: args.sessions,
        echoes: args.echoes,
        echo_bytes: args.echo_bytes,
        start,
        after_burst,
        late_growth_kib,
    })
}
