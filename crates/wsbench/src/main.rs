//! `wsbench`: latency, throughput, idle-memory and HTTP timings for the desktop relay.
//!
//! Every mode connects only to `127.0.0.1`, runs a bounded amount of work, prints one JSON
//! line of results on stdout and a human summary on stderr. `report` turns those JSON files
//! into the Markdown table of `BENCHMARKS.md`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bursts;
mod connect_bench;
mod http_bench;
mod idle;
mod procstat;
mod report;
mod start_bench;
mod stats;
mod target;
mod ws;
mod ws_bench;

#[derive(Parser)]
#[command(name = "wsbench", version, about = "WebSocket relay benchmark (127.0.0.1 only)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Round-trip latency of small messages, then echo throughput per message size.
    Ws(ws_bench::WsArgs),
    /// WebSocket set-up rate: open, read the greeting, close; several at once.
    Connect(connect_bench::ConnectArgs),
    /// Time from `POST /api/desktops` to an open desktop WebSocket, by start step.
    Start(start_bench::StartArgs),
    /// Opens idle WebSockets in steps and samples the VmRSS of given processes.
    Idle(idle::IdleArgs),
    /// Repeated bursts of sessions (open, echo, close), VmRSS of given processes after each.
    Bursts(bursts::BurstsArgs),
    /// Plain HTTP GETs, one or several at a time (keep-alive where the server allows it).
    Http(http_bench::HttpArgs),
    /// Renders result files as Markdown tables: medians over repeats, ratios, targets.
    Report(report::ReportArgs),
}

fn main() -> ExitCode {
    // Both TLS users (tokio-rustls, hyper-rustls) get explicit configs, but a process-wide
    // default keeps any library that looks for one from panicking.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Report(args) => report::run(&args),
        command => run_async(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wsbench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_async(command: Command) -> anyhow::Result<()> {
    // One thread: the client should take as little of a small machine as possible, and the
    // same client overhead applies to the direct and the proxied run.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        match command {
            Command::Ws(args) => ws_bench::run(&args).await,
            Command::Connect(args) => connect_bench::run(&args).await,
            Command::Start(args) => start_bench::run(&args).await,
            Command::Idle(args) => idle::run(&args).await,
            Command::Bursts(args) => bursts::run(&args).await,
            Command::Http(args) => http_bench::run(&args).await,
            Command::Report(_) => unreachable!("handled without a runtime"),
        }
    })
}

/// Prints one compact JSON line on stdout.
fn emit<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
