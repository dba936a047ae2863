//! `wsbench ws`: round trips of small messages (back to back or at a fixed rate per session),
//! then echo throughput for each message size, with the CPU time of watched processes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use clap::Args;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{Barrier, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::procstat::{Meter, Usage, parse_watched};
use crate::stats::{Summary, summarize};
use crate::target::{Endpoint, Target};
use crate::ws::{Connector, Ws, close, recv_binary, send_binary};

/// Upper bounds that keep every run short and the machine usable.
const MAX_CONNECTIONS: usize = 1000;
const MAX_MESSAGES: usize = 1_000_000;
const MAX_SECONDS: f64 = 120.0;

#[derive(Args, Debug)]
pub(crate) struct WsArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// Concurrent connections of each latency run (comma-separated: one run per value).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    latency_connections: Vec<usize>,
    /// Round trips per second per connection of each latency run (comma-separated, paired
    /// with --latency-connections; 0 = back to back). Missing values mean 0.
    #[arg(long, value_delimiter = ',')]
    latency_rates: Vec<f64>,
    /// Measured round trips per connection of a back-to-back run.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Length of a fixed-rate latency run (round trips per connection = rate × this).
    #[arg(long, default_value_t = 4.0)]
    latency_secs: f64,
    /// Unmeasured round trips per connection before measuring.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Size of a latency message (RFB key events are 8 bytes, pointer events 6).
    #[arg(long, default_value_t = 8)]
    message_bytes: usize,
    /// Concurrent connections of each throughput run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    throughput_connections: Vec<usize>,
    /// Message sizes of the throughput runs (comma-separated; KasmVNC frames are at most
    /// 64 KiB, a browser upload can send more).
    #[arg(long, value_delimiter = ',', default_value = "65536")]
    throughput_bytes: Vec<usize>,
    /// Messages in flight per connection during the throughput run.
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Length of each throughput run.
    #[arg(long, default_value_t = 4.0)]
    throughput_secs: f64,
    /// Latency runs only (no throughput runs).
    #[arg(long)]
    no_throughput: bool,
    /// Stop a throughput run after this many messages per connection even if time is left.
    #[arg(long, default_value_t = 1_000_000)]
    throughput_max_messages: u64,
    /// A process whose CPU time and VmRSS are recorded around each throughput run, as
    /// LABEL=PID (repeatable), e.g. `proxy=1234`.
    #[arg(long = "proc", value_name = "LABEL=PID")]
    procs: Vec<String>,
}

/// Output of `wsbench ws`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WsResult {
    pub(crate) mode: String,
    pub(crate) label: String,
    pub(crate) url: String,
    pub(crate) latency: Vec<LatencyRun>,
    pub(crate) throughput: Vec<ThroughputRun>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LatencyRun {
    pub(crate) connections: usize,
    /// Round trips per second per connection; 0 = back to back.
    #[serde(default)]
    pub(crate) rate_per_connection: f64,
    pub(crate) messages_per_connection: usize,
    pub(crate) message_bytes: usize,
    pub(crate) rtt: Summary,
    /// All connections together.
    pub(crate) round_trips_per_s: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ThroughputRun {
    pub(crate) connections: usize,
    pub(crate) message_bytes: usize,
    pub(crate) window: usize,
    pub(crate) seconds: f64,
    /// Messages echoed back, all connections.
    pub(crate) messages: u64,
    /// Payload echoed back per second in 10^6 bytes (each byte crossed the path both ways).
    pub(crate) mb_per_s: f64,
    /// Payload bytes echoed back (each crossed a proxy twice: in, and back out).
    #[serde(default)]
    pub(crate) payload_bytes: u64,
    /// CPU time and memory of the watched processes during this run.
    #[serde(default)]
    pub(crate) procs: BTreeMap<String, Usage>,
}

pub(crate) async fn run(args: &WsArgs) -> anyhow::Result<()> {
    validate(args)?;
    let connector = Arc::new(Connector::new(Target::parse(&args.endpoint, true)?)?);
    let mut result = WsResult {
        mode: "ws".into(),
        label: args.endpoint.label.clone(),
        url: connector.target().url.to_string(),
        latency: Vec::new(),
        throughput: Vec::new(),
    };
    let watched = parse_watched(&args.procs)?;
    for (i, &n) in args.latency_connections.iter().enumerate() {
        let rate = args.latency_rates.get(i).copied().unwrap_or(0.0);
        let run = latency_run(&connector, n, rate, args)
            .await
            .with_context(|| format!("latency run with {n} connections"))?;
        let s = &run.rtt;
        eprintln!(
            "[{}] latency {n:>4} conn at {rate} Hz × {} msgs of {} B: p50 {:.1} µs  p90 {:.1}  p99 {:.1}  max {:.1}  ({:.0} rt/s)",
            result.label,
            run.messages_per_connection,
            run.message_bytes,
            s.p50_us,
            s.p90_us,
            s.p99_us,
            s.max_us,
            run.round_trips_per_s
        );
        result.latency.push(run);
    }
    let sizes: &[usize] = if args.no_throughput {
        &[]
    } else {
        &args.throughput_bytes
    };
    for &size in sizes {
        for &n in &args.throughput_connections {
            let meter = Meter::start(&watched)?;
            let mut run = throughput_run(&connector, n, size, args)
                .await
                .with_context(|| format!("throughput run with {n} connections and {size} B messages"))?;
            run.procs = meter.finish()?;
            eprintln!(
                "[{}] throughput {n:>3} conn, {} B msgs, window {}: {:.1} MB/s echoed ({} msgs in {:.2} s) {:?}",
                result.label, run.message_bytes, run.window, run.mb_per_s, run.messages, run.seconds, run.procs
            );
            result.throughput.push(run);
        }
    }
    crate::emit(&result)
}

fn validate(args: &WsArgs) -> anyhow::Result<()> {
    for &n in args.latency_connections.iter().chain(&args.throughput_connections) {
        ensure!(
            (1..=MAX_CONNECTIONS).contains(&n),
            "connections must be 1–{MAX_CONNECTIONS}"
        );
    }
    ensure!(
        (1..=MAX_MESSAGES).contains(&args.messages) && args.warmup <= MAX_MESSAGES,
        "--messages must be 1–{MAX_MESSAGES}"
    );
    ensure!(
        (1..=4096).contains(&args.message_bytes),
        "--message-bytes must be 1–4096"
    );
    ensure!(
        args.throughput_bytes.iter().all(|b| (1..=8 * 1024 * 1024).contains(b)),
        "--throughput-bytes must be 1 B–8 MiB"
    );
    ensure!(
        args.latency_rates.iter().all(|r| (0.0..=100_000.0).contains(r)),
        "--latency-rates must be 0–100000 per second"
    );
    ensure!(
        args.latency_secs > 0.0 && args.latency_secs <= MAX_SECONDS,
        "--latency-secs must be in (0, {MAX_SECONDS}]"
    );
    ensure!((1..=64).contains(&args.window), "--window must be 1–64");
    ensure!(
        args.throughput_secs > 0.0 && args.throughput_secs <= MAX_SECONDS,
        "--throughput-secs must be in (0, {MAX_SECONDS}]"
    );
    Ok(())
}

async fn connect_all(connector: &Connector, n: usize) -> anyhow::Result<Vec<Ws>> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(connector.connect().await?);
    }
    Ok(all)
}

/// Every connection's measured window, to compute the aggregate rate.
struct Timed<T> {
    value: T,
    start: Instant,
    end: Instant,
}

async fn latency_run(connector: &Connector, n: usize, rate: f64, args: &WsArgs) -> anyhow::Result<LatencyRun> {
    let conns = connect_all(connector, n).await?;
    let barrier = Arc::new(Barrier::new(n));
    let messages = if rate > 0.0 {
        ((rate * args.latency_secs).ceil() as usize).max(1)
    } else {
        args.messages
    };
    let mut tasks = JoinSet::new();
    for (id, ws) in conns.into_iter().enumerate() {
        let pace = (rate > 0.0).then(|| {
            let interval = Duration::from_secs_f64(1.0 / rate);
            // Sessions are spread evenly over one interval instead of all firing together.
            Pace {
                interval,
                offset: interval.mul_f64(id as f64 / n as f64),
            }
        });
        let job = RoundTrips {
            id,
            messages,
            warmup: args.warmup,
            size: args.message_bytes,
            pace,
        };
        tasks.spawn(round_trips(ws, job, barrier.clone()));
    }
    let timed = join_all(tasks).await?;
    let wall = window_of(&timed);
    let samples: Vec<u64> = timed.into_iter().flat_map(|t| t.value).collect();
    let total = samples.len();
    Ok(LatencyRun {
        connections: n,
        rate_per_connection: rate,
        messages_per_connection: messages,
        message_bytes: args.message_bytes,
        rtt: summarize(samples),
        round_trips_per_s: total as f64 / wall.as_secs_f64().max(1e-9),
    })
}

/// A fixed sending rate for one session.
struct Pace {
    interval: Duration,
    offset: Duration,
}

/// One session's share of a latency run.
struct RoundTrips {
    id: usize,
    messages: usize,
    /// Back-to-back round trips before measuring.
    warmup: usize,
    size: usize,
    pace: Option<Pace>,
}

/// Sends a message, waits for its echo, repeats (on the session's pace, if any); returns
/// round-trip times in nanoseconds.
async fn round_trips(mut ws: Ws, job: RoundTrips, barrier: Arc<Barrier>) -> anyhow::Result<Timed<Vec<u64>>> {
    let RoundTrips {
        id,
        messages,
        warmup,
        size,
        pace,
    } = job;
    // Shaped like an RFB KeyEvent: type 4, down-flag, padding, a 32-bit keysym (our counter).
    let mut payload = vec![0u8; size];
    payload[0] = 4;
    let mut samples = Vec::with_capacity(messages);
    let mut start = Instant::now();
    let mut ticker = None;
    for i in 0..warmup + messages {
        if i == warmup {
            barrier.wait().await;
            start = Instant::now();
            ticker = pace.as_ref().map(|p| {
                let mut t = tokio::time::interval_at((start + p.offset).into(), p.interval);
                // A late echo delays the next message rather than causing a burst.
                t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                t
            });
        }
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        // A distinct tail per message, so a stale or misrouted echo cannot pass the check.
        let tag = ((i as u32) ^ ((id as u32) << 20)).to_be_bytes();
        let k = size.saturating_sub(1).min(4);
        payload[size - k..].copy_from_slice(&tag[4 - k..]);
        let sent = Bytes::copy_from_slice(&payload);
        let t0 = Instant::now();
        send_binary(&mut ws, sent.clone()).await?;
        let echo = recv_binary(&mut ws).await?;
        let rtt = t0.elapsed();
        if echo != sent {
            bail!("echo {i} on connection {id} differs from what was sent");
        }
        if i >= warmup {
            samples.push(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    let end = Instant::now();
    close(ws).await;
    Ok(Timed {
        value: samples,
        start,
        end,
    })
}

async fn throughput_run(connector: &Connector, n: usize, size: usize, args: &WsArgs) -> anyhow::Result<ThroughputRun> {
    let conns = connect_all(connector, n).await?;
    let barrier = Arc::new(Barrier::new(n));
    let duration = Duration::from_secs_f64(args.throughput_secs);
    let payload: Bytes = (0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
    let mut tasks = JoinSet::new();
    for ws in conns {
        tasks.spawn(echo_stream(
            ws,
            payload.clone(),
            args.window,
            duration,
            args.throughput_max_messages,
            barrier.clone(),
        ));
    }
    let timed = join_all(tasks).await?;
    let wall = window_of(&timed);
    let messages: u64 = timed.iter().map(|t| t.value).sum();
    let payload_bytes = messages.saturating_mul(size as u64);
    Ok(ThroughputRun {
        connections: n,
        message_bytes: size,
        window: args.window,
        seconds: wall.as_secs_f64(),
        messages,
        mb_per_s: payload_bytes as f64 / 1e6 / wall.as_secs_f64().max(1e-9),
        payload_bytes,
        procs: BTreeMap::new(),
    })
}

/// Keeps `window` messages in flight until `duration` or `max` messages, then drains.
/// Returns how many echoes came back.
async fn echo_stream(
    ws: Ws,
    payload: Bytes,
    window: usize,
    duration: Duration,
    max: u64,
    barrier: Arc<Barrier>,
) -> anyhow::Result<Timed<u64>> {
    let (mut tx, mut rx) = ws.split();
    barrier.wait().await;
    let start = Instant::now();
    let deadline = start + duration;
    let credits = Semaphore::new(window);
    let (done_tx, mut done_rx) = watch::channel(None::<u64>);
    let size = payload.len();

    let writer = async {
        let mut sent = 0u64;
        while Instant::now() < deadline && sent < max {
            credits.acquire().await?.forget();
            send_binary(&mut tx, payload.clone()).await?;
            sent += 1;
        }
        done_tx.send_replace(Some(sent));
        anyhow::Ok(())
    };
    let reader = async {
        let mut received = 0u64;
        let mut writer_done = false;
        loop {
            if done_rx.borrow().is_some_and(|total| received >= total) {
                break;
            }
            tokio::select! {
                echo = recv_binary(&mut rx) => {
                    let echo = echo?;
                    ensure!(echo.len() == size, "echo of {} bytes, sent {size}", echo.len());
                    received += 1;
                    credits.add_permits(1);
                }
                changed = done_rx.changed(), if !writer_done => {
                    changed?;
                    writer_done = true;
                }
            }
        }
        anyhow::Ok(received)
    };
    let ((), received) = tokio::try_join!(writer, reader)?;
    let end = Instant::now();
    if let Ok(ws) = tx.reunite(rx) {
        close(ws).await;
    }
    Ok(Timed {
        value: received,
        start,
        end,
    })
}

async fn join_all<T: 'static>(mut tasks: JoinSet<anyhow::Result<T>>) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        out.push(joined.context("benchmark task panicked")??);
    }
    Ok(out)
}

/// From the earliest start to the latest end.
fn window_of<T>(timed: &[Timed<T>]) -> Duration {
    let start = timed.iter().map(|t| t.start).min();
    let end = timed.iter().map(|t| t.end).max();
    match (start, end) {
        (Some(start), Some(end)) => end.saturating_duration_since(start),
        _ => Duration::ZERO,
    }
}
