//! `wsbench report`: Markdown tables from the JSON lines of the other modes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};
use clap::Args;
use serde::de::DeserializeOwned;

use crate::http_bench::HttpResult;
use crate::idle::IdleResult;
use crate::ws_bench::WsResult;

#[derive(Args, Debug)]
pub(crate) struct ReportArgs {
    /// `wsbench ws` output, directly against the desktop.
    #[arg(long)]
    direct_ws: PathBuf,
    /// `wsbench ws` output, through the portal.
    #[arg(long)]
    portal_ws: PathBuf,
    /// `wsbench http` output, directly against the desktop.
    #[arg(long)]
    direct_http: PathBuf,
    /// `wsbench http` output, through the portal.
    #[arg(long)]
    portal_http: PathBuf,
    /// `wsbench idle` output (through the portal).
    #[arg(long)]
    idle: PathBuf,
}

fn load<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let line = text.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("parsing {}", path.display()))
}

pub(crate) fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let direct_ws: WsResult = load(&args.direct_ws)?;
    let portal_ws: WsResult = load(&args.portal_ws)?;
    let direct_http: HttpResult = load(&args.direct_http)?;
    let portal_http: HttpResult = load(&args.portal_http)?;
    let idle: IdleResult = load(&args.idle)?;
    print!("{}", render(&direct_ws, &portal_ws, &direct_http, &portal_http, &idle)?);
    Ok(())
}

fn render(
    direct_ws: &WsResult,
    portal_ws: &WsResult,
    direct_http: &HttpResult,
    portal_http: &HttpResult,
    idle: &IdleResult,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let us = |v: f64| format!("{v:.0} µs");
    let ratio = |d: f64, p: f64| if d > 0.0 { format!("{:.2}", p / d) } else { "–".into() };
    writeln!(
        out,
        "| Measurement | Direct (fake-kasm, wss) | Through portal (ws → wss) | Portal / direct |"
    )?;
    writeln!(out, "|---|---:|---:|---:|")?;
    ensure!(
        direct_ws.latency.len() == portal_ws.latency.len() && direct_ws.throughput.len() == portal_ws.throughput.len(),
        "the direct and portal runs used different settings"
    );
    for (d, p) in direct_ws.latency.iter().zip(&portal_ws.latency) {
        ensure!(d.connections == p.connections, "latency runs differ in connections");
        let what = format!(
            "WS round trip, {} B, {} conn × {} msgs",
            d.message_bytes, d.connections, d.messages_per_connection
        );
        for (name, dv, pv) in [
            ("p50", d.rtt.p50_us, p.rtt.p50_us),
            ("p90", d.rtt.p90_us, p.rtt.p90_us),
            ("p99", d.rtt.p99_us, p.rtt.p99_us),
            ("max", d.rtt.max_us, p.rtt.max_us),
        ] {
            writeln!(out, "| {what}: {name} | {} | {} | {} |", us(dv), us(pv), ratio(dv, pv))?;
        }
        writeln!(
            out,
            "| {what}: round trips/s | {:.0} | {:.0} | {} |",
            d.round_trips_per_s,
            p.round_trips_per_s,
            ratio(d.round_trips_per_s, p.round_trips_per_s)
        )?;
    }
    for (d, p) in direct_ws.throughput.iter().zip(&portal_ws.throughput) {
        ensure!(d.connections == p.connections, "throughput runs differ in connections");
        writeln!(
            out,
            "| WS echo throughput, {} KiB msgs, {} conn, window {} | {:.0} MB/s | {:.0} MB/s | {} |",
            d.message_bytes / 1024,
            d.connections,
            d.window,
            d.mb_per_s,
            p.mb_per_s,
            ratio(d.mb_per_s, p.mb_per_s)
        )?;
    }
    let (d, p) = (&direct_http.latency, &portal_http.latency);
    let what = format!(
        "HTTP GET desktop page ({} B), {} sequential",
        direct_http.body_bytes, d.count
    );
    for (name, dv, pv) in [("p50", d.p50_us, p.p50_us), ("p99", d.p99_us, p.p99_us)] {
        writeln!(out, "| {what}: {name} | {} | {} | {} |", us(dv), us(pv), ratio(dv, pv))?;
    }
    writeln!(
        out,
        "| {what}: requests/s | {:.0} | {:.0} | {} |",
        direct_http.requests_per_s,
        portal_http.requests_per_s,
        ratio(direct_http.requests_per_s, portal_http.requests_per_s)
    )?;

    writeln!(out)?;
    write!(out, "| VmRSS of |")?;
    for s in &idle.samples {
        match s.frame_bytes {
            0 => write!(out, " {} idle WS |", s.open)?,
            n => write!(out, " {} WS, after one {} KiB echo each |", s.open, n / 1024)?,
        }
    }
    write!(out, " all closed again | KiB per WS, idle |")?;
    let frame = idle.kib_per_connection_after_frame.as_ref();
    if frame.is_some() {
        write!(out, " KiB per WS, after a frame |")?;
    }
    writeln!(out)?;
    write!(out, "|---|")?;
    for _ in 0..idle.samples.len() + 2 + usize::from(frame.is_some()) {
        write!(out, "---:|")?;
    }
    writeln!(out)?;
    for (label, per) in &idle.kib_per_connection {
        write!(out, "| {label} |")?;
        for s in &idle.samples {
            write!(out, " {} |", kib(s.vm_rss_kib.get(label)))?;
        }
        write!(out, " {} | {per:.1} |", kib(idle.after_close.vm_rss_kib.get(label)))?;
        if let Some(frame) = frame {
            write!(
                out,
                " {} |",
                frame.get(label).map_or_else(|| "–".into(), |v| format!("{v:.1}"))
            )?;
        }
        writeln!(out)?;
    }
    Ok(out)
}

fn kib(v: Option<&u64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.1} MiB", *v as f64 / 1024.0))
}
