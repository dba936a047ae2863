//! What the desktop handover costs in the store, against a session insert in the same run:
//! `cargo run --release -p portal-store --example handover_cost [DATABASE_URL] [N]`
//! (default: a fresh SQLite file in a temporary directory, 2,000 rounds). Each round issues a
//! desktop ticket and redeems it (the view page and the desktop host's `/.ird/enter`), binds a
//! desktop cookie and reads it back (a replica's first request with it), and, as the baseline,
//! creates a session. Prints the median and 99th percentile of each, in microseconds.

use std::time::{Duration, Instant};

use portal_store::{Role, Store};
use secrecy::SecretString;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("bench.db").display()));
    let rounds: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(2000);
    let store = Store::connect(&url).await?;
    let name = format!("bench{}", rand::random::<u32>());
    let user = store
        .create_local_user(
            &name,
            &name,
            Role::Student,
            &SecretString::from("a long bench password".to_owned()),
        )
        .await?;
    let session = store.create_session(&user.id, Duration::from_secs(3600)).await?.session;
    let (mut baseline, mut tickets, mut cookies) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        store.create_session(&user.id, Duration::from_secs(3600)).await?;
        baseline.push(t.elapsed());

        let t = Instant::now();
        let ticket = store
            .issue_desktop_ticket(&session.id, "bench-x", Duration::from_secs(60))
            .await?;
        let taken = store.take_desktop_ticket(&ticket).await?;
        tickets.push(t.elapsed());
        assert!(taken.is_some(), "the ticket redeems");

        let t = Instant::now();
        let cookie = store.bind_desktop_cookie(&session.id, "bench-x").await?;
        let owner = store.desktop_cookie(&cookie).await?;
        cookies.push(t.elapsed());
        assert!(owner.is_some(), "the cookie is found");
    }
    store.delete_user_sessions(&user.id).await?;
    let (base, _) = stats(&mut baseline);
    println!("backend: {:?}, rounds: {rounds}", store.backend());
    for (what, samples) in [
        ("session insert (baseline)", &mut baseline),
        ("ticket issue + redeem", &mut tickets),
        ("cookie bind + first lookup", &mut cookies),
    ] {
        let (p50, p99) = stats(samples);
        println!(
            "{what:28} p50 {p50:7.0} µs  p99 {p99:7.0} µs  ({:.2}× baseline p50)",
            p50 / base
        );
    }
    Ok(())
}

/// Median and 99th percentile in microseconds.
fn stats(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1e6
    };
    (at(0.5), at(0.99))
}
