//! `wsbench idle`: memory per open relay, from the VmRSS of given processes.
//!
//! Opens WebSockets in steps up to each level, lets them sit idle, samples `/proc/PID/status`
//! at 0 and at every level; then has every open WebSocket echo one frame-sized message (so the
//! relay's buffers have really been used, as a desktop's first screen update would) and samples
//! again; and once more after closing them all.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::procstat::{Watched, parse_watched, status_kib};
use crate::target::{Endpoint, Target};
use crate::ws::{Connector, Ws, recv_binary, send_binary};

/// Above this the client itself needs more than the usual 64 Ki descriptors per process
/// (the portal needs two per relay).
const MAX_OPEN: usize = 20_000;

#[derive(Args, Debug)]
pub(crate) struct IdleArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// Cumulative numbers of open WebSockets at which memory is sampled (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,200")]
    levels: Vec<usize>,
    /// A process to sample, as LABEL=PID (repeatable), e.g. `portal=1234`.
    #[arg(long = "rss", value_name = "LABEL=PID", required = true)]
    rss: Vec<String>,
    /// Pause before each sample, so buffers and the allocator settle.
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// Connections opened at once.
    #[arg(long, default_value_t = 16)]
    parallel: usize,
    /// Connections opened and closed before the first sample (one-time allocations).
    #[arg(long, default_value_t = 8)]
    warmup: usize,
    /// Size of the message each connection echoes before the last sample; 0 skips that step.
    #[arg(long, default_value_t = 64 * 1024)]
    frame_bytes: usize,
    /// How often to open (up to the highest level) and close them all. RSS rarely drops after
    /// a close — the allocator keeps freed memory for reuse — so a leak shows as growth from
    /// one cycle's "all closed" to the next one's.
    #[arg(long, default_value_t = 1)]
    cycles: usize,
}

/// Output of `wsbench idle`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IdleResult {
    pub(crate) mode: String,
    pub(crate) label: String,
    pub(crate) url: String,
    pub(crate) samples: Vec<MemorySample>,
    /// After every connection was closed again.
    pub(crate) after_close: MemorySample,
    /// After each further open-and-close cycle (`--cycles`), in order.
    #[serde(default)]
    pub(crate) later_cycles: Vec<MemorySample>,
    /// (RSS at the highest level − RSS at 0) / highest level, per process; connections that
    /// carried only the greeting and one 8-byte echo.
    pub(crate) kib_per_connection: BTreeMap<String, f64>,
    /// The same after every connection echoed one `frame_bytes` message.
    pub(crate) kib_per_connection_after_frame: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MemorySample {
    pub(crate) open: usize,
    /// Size of the message every open connection has echoed (0: only 8 bytes).
    pub(crate) frame_bytes: usize,
    pub(crate) vm_rss_kib: BTreeMap<String, u64>,
    pub(crate) rss_anon_kib: BTreeMap<String, u64>,
}

pub(crate) async fn run(args: &IdleArgs) -> anyhow::Result<()> {
    let processes = parse_watched(&args.rss)?;
    let mut levels = args.levels.clone();
    levels.sort_unstable();
    levels.dedup();
    ensure!(
        levels.first().is_some_and(|&l| l > 0) && levels.last().is_some_and(|&l| l <= MAX_OPEN),
        "--levels must be 1–{MAX_OPEN}"
    );
    ensure!((1..=256).contains(&args.parallel), "--parallel must be 1–256");
    ensure!((1..=10).contains(&args.cycles), "--cycles must be 1–10");
    ensure!(args.settle_ms <= 60_000, "--settle-ms must be at most 60000");
    ensure!(
        args.frame_bytes <= 16 * 1024 * 1024,
        "--frame-bytes must be at most 16 MiB"
    );
    // Small client read buffers: thousands of idle connections must not cost the client more
    // memory than the machine has (tungstenite allocates its read buffer eagerly).
    let connector = Arc::new(Connector::new(Target::parse(&args.endpoint, true)?)?.with_read_buffer(4096));
    let settle = Duration::from_millis(args.settle_ms);

    let warm = open(&connector, args.warmup, args.parallel).await?;
    drop(warm);
    tokio::time::sleep(settle).await;

    let mut samples = vec![sample(0, 0, &processes)?];
    let mut held: Vec<Ws> = Vec::new();
    for &level in &levels {
        held.extend(open(&connector, level - held.len(), args.parallel).await?);
        tokio::time::sleep(settle).await;
        let s = sample(level, 0, &processes)?;
        eprintln!(
            "[{}] {level:>5} idle WebSockets open: VmRSS {:?} KiB",
            args.endpoint.label, s.vm_rss_kib
        );
        samples.push(s);
    }
    let idle_sample = samples.last().cloned();
    let mut frame_sample = None;
    if args.frame_bytes > 0 {
        echo_frame_on_each(&mut held, args.frame_bytes).await?;
        tokio::time::sleep(settle).await;
        let s = sample(held.len(), args.frame_bytes, &processes)?;
        eprintln!(
            "[{}] {:>5} open, after one {} B echo each: VmRSS {:?} KiB",
            args.endpoint.label,
            held.len(),
            args.frame_bytes,
            s.vm_rss_kib
        );
        frame_sample = Some(s.clone());
        samples.push(s);
    }
    drop(held);
    tokio::time::sleep(settle).await;
    let after_close = sample(0, 0, &processes)?;
    let top = levels.last().copied().unwrap_or(0);
    let mut later_cycles = Vec::new();
    for cycle in 2..=args.cycles {
        let mut again = open(&connector, top, args.parallel).await?;
        if args.frame_bytes > 0 {
            echo_frame_on_each(&mut again, args.frame_bytes).await?;
        }
        drop(again);
        tokio::time::sleep(settle).await;
        let s = sample(0, 0, &processes)?;
        eprintln!(
            "[{}] cycle {cycle}: {top} opened and closed again: VmRSS {:?} KiB",
            args.endpoint.label, s.vm_rss_kib
        );
        later_cycles.push(s);
    }

    let label = &args.endpoint.label;
    let base = &samples[0];
    let kib_per_connection = idle_sample
        .map(|s| per_connection(label, "idle", base, &s))
        .unwrap_or_default();
    let kib_per_connection_after_frame = frame_sample.map(|s| per_connection(label, "after a frame", base, &s));
    crate::emit(&IdleResult {
        mode: "idle".into(),
        label: label.clone(),
        url: connector.target().url.to_string(),
        samples,
        after_close,
        later_cycles,
        kib_per_connection,
        kib_per_connection_after_frame,
    })
}

fn per_connection(run: &str, what: &str, base: &MemorySample, at: &MemorySample) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (label, &rss) in &at.vm_rss_kib {
        let before = base.vm_rss_kib.get(label).copied().unwrap_or(rss);
        let per = (rss as f64 - before as f64) / at.open.max(1) as f64;
        eprintln!("[{run}] {label}: {per:.1} KiB per open WebSocket ({what})");
        out.insert(label.clone(), per);
    }
    out
}

/// Every connection echoes one message of `size` bytes, a few connections at a time.
async fn echo_frame_on_each(held: &mut [Ws], size: usize) -> anyhow::Result<()> {
    let frame = Bytes::from(vec![0x5a; size]);
    for chunk in held.chunks_mut(16) {
        let echoes = chunk.iter_mut().map(|ws| {
            let frame = frame.clone();
            async move {
                send_binary(ws, frame.clone()).await?;
                ensure!(recv_binary(ws).await? == frame, "echo differs");
                anyhow::Ok(())
            }
        });
        futures_util::future::try_join_all(echoes).await?;
    }
    Ok(())
}

/// Opens `n` WebSockets, at most `parallel` at a time, each checked with one echo.
pub(crate) async fn open(connector: &Arc<Connector>, n: usize, parallel: usize) -> anyhow::Result<Vec<Ws>> {
    let mut out = Vec::with_capacity(n);
    let mut tasks = JoinSet::new();
    let mut started = 0;
    while out.len() < n {
        while started < n && tasks.len() < parallel {
            let connector = connector.clone();
            tasks.spawn(async move {
                let mut ws = connector.connect().await?;
                // One echo proves the relay carries data both ways before we call it idle.
                let ping = Bytes::from_static(&[4, 1, 0, 0, 0, 0, 0, 0x61]);
                send_binary(&mut ws, ping.clone()).await?;
                if recv_binary(&mut ws).await? != ping {
                    bail!("echo differs");
                }
                anyhow::Ok(ws)
            });
            started += 1;
        }
        match tasks.join_next().await {
            Some(joined) => out.push(joined.context("connect task panicked")??),
            None => break,
        }
    }
    Ok(out)
}

pub(crate) fn sample(open: usize, frame_bytes: usize, processes: &[Watched]) -> anyhow::Result<MemorySample> {
    let mut s = MemorySample {
        open,
        frame_bytes,
        vm_rss_kib: BTreeMap::new(),
        rss_anon_kib: BTreeMap::new(),
    };
    for Watched { label, pid } in processes {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        s.vm_rss_kib.insert(label.clone(), status_kib(&status, "VmRSS:")?);
        s.rss_anon_kib.insert(label.clone(), status_kib(&status, "RssAnon:")?);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() -> anyhow::Result<()> {
        let own = sample(0, 0, &parse_watched(&[format!("me={}", std::process::id())])?)?;
        assert!(own.vm_rss_kib["me"] > 0);
        Ok(())
    }
}
