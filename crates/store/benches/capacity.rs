//! How much of a school authority one PostgreSQL carries: 5,000 users with their sessions,
//! desktops and audit events, then the portal's own query mix at a given number of active
//! desktops (run by `scripts/bench-store.sh`, results in BENCHMARKS.md).
//!
//! What one active desktop costs the database, from the portal's code (see BENCHMARKS.md):
//! every replica that holds a desktop-origin binding peeks its portal session every 2 s
//! (`desktop_sessions::SWEEP_INTERVAL`; the store's 1 s cache misses by then), and the view
//! page sends an input heartbeat at most every 30 s (a session lookup, the desktop row and an
//! activity write). Starts and stops are rare beside that (a lesson starts each desktop once):
//! they are run here at one per 45 minutes per desktop, with their audit entry and notice.
//!
//! Environment: `BENCH_DATABASE_URL` (required; a database this run may fill), `BENCH_USERS`
//! (5000), `BENCH_ACTIVE` (comma-separated active desktop counts, `500,1500,3000`),
//! `BENCH_SECS` (10 per load step), `BENCH_AUDIT_ROWS` (200000, about a month of a large
//! school's events). Prints Markdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portal_store::{AuditEvent, AuditFilter, AuditKind, DesktopType, ExternalUser, Role, Store};
use sqlx::Row;
use tokio::sync::Mutex;

/// The sweep's period: one peek per active desktop per this.
const SWEEP: Duration = Duration::from_secs(2);
/// The view page's input heartbeat: at most one per this.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// One start (and later stop) per desktop per lesson.
const LESSON: Duration = Duration::from_secs(45 * 60);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct People {
    /// (user id, session id, desktop id) per user.
    rows: Vec<(String, String, String)>,
}

async fn populate(store: &Store, users: usize) -> People {
    store
        .upsert_desktop_type(&DesktopType {
            key: "ubuntu".to_owned(),
            names: [("de".to_owned(), "Ubuntu".to_owned())].into(),
            image: "kasmweb/ubuntu-focal-desktop:1.16.0".to_owned(),
            ..DesktopType::default()
        })
        .await
        .expect("desktop type");
    // Eight at a time: one after the other, every commit waits for its own fsync.
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut rows = Vec::new();
            for i in (worker..users).step_by(8) {
                rows.push((i, person(&store, i).await));
            }
            rows
        });
    }
    let mut rows: Vec<_> = tasks.join_all().await.into_iter().flatten().collect();
    rows.sort_by_key(|(i, _)| *i);
    let rows = rows.into_iter().map(|(_, r)| r).collect();
    People { rows }
}

/// User `i` with two groups, a session and a desktop: (user id, session id, desktop id).
async fn person(store: &Store, i: usize) -> (String, String, String) {
    let user = store
        .upsert_external_user(&ExternalUser {
            subject: format!("bench-sub-{i}"),
            username: format!("schueler{i}"),
            display_name: format!("Schüler {i}"),
            email: None,
            role: if i.is_multiple_of(30) {
                Role::Teacher
            } else {
                Role::Student
            },
            groups: vec![format!("klasse-{}", i / 30), "alle".to_owned()],
        })
        .await
        .expect("user");
    let session = store
        .create_session(&user.id, Duration::from_secs(12 * 3600))
        .await
        .expect("session");
    let desktop = format!("schueler{i}-ubuntu");
    store
        .ensure_desktop(&desktop, &user.id, "ubuntu")
        .await
        .expect("desktop");
    (user.id, session.session.id, desktop)
}

/// A month of events in one statement (the portal writes them one by one, but that is not
/// what is measured here; their size and the admin's page over them are).
async fn fill_audit(pool: &sqlx::PgPool, rows: usize, users: usize) {
    sqlx::query(
        "INSERT INTO audit_log (at, kind, actor, username, target, detail) \
         SELECT $3 - 30 * 86400 + g * (30 * 86400) / $1, \
                (ARRAY['sign_in', 'desktop_started', 'desktop_stopped'])[1 + g % 3], \
                'schueler' || (g % $2), 'schueler' || (g % $2), 'schueler' || (g % $2) || '-ubuntu', 'bench' \
         FROM generate_series(0, $1 - 1) AS g",
    )
    .bind(rows as i64)
    .bind(users as i64)
    .bind(now())
    .execute(pool)
    .await
    .expect("audit rows");
    // What autovacuum does a little later in production: without statistics the planner
    // guesses a user has a thousand entries and walks the whole log by time.
    sqlx::query("ANALYZE").execute(pool).await.expect("analyze");
}

/// Latencies of one kind of operation, in microseconds.
#[derive(Default)]
struct Samples(Vec<u64>);

impl Samples {
    fn quantile(&self, q: f64) -> u64 {
        let mut v = self.0.clone();
        v.sort_unstable();
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Peek,
    Heartbeat,
    StartStop,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Peek => "session peek (sweep)",
            Op::Heartbeat => "input heartbeat",
            Op::StartStop => "start + stop with audit and notice",
        }
    }
}

async fn run_op(store: &Store, op: Op, user: &(String, String, String)) {
    let (_, session, desktop) = user;
    match op {
        Op::Peek => {
            store
                .peek_session(session, Some(Duration::from_secs(7200)))
                .await
                .expect("peek");
        }
        Op::Heartbeat => {
            store
                .peek_session(session, Some(Duration::from_secs(7200)))
                .await
                .expect("session");
            store.desktop(desktop).await.expect("desktop");
            store.touch_activity(desktop, now()).await.expect("touch");
        }
        Op::StartStop => {
            if store.claim_start(desktop).await.expect("claim") {
                store
                    .mark_running(desktop, "c0ffee", "10.0.0.2", 6901)
                    .await
                    .expect("running");
                store
                    .audit(&AuditEvent {
                        kind: AuditKind::DesktopStarted,
                        actor: None,
                        username: None,
                        target: Some(desktop.clone()),
                        detail: "bench".to_owned(),
                    })
                    .await
                    .expect("audit");
                store.notify("ird_bench", desktop).await;
                store
                    .mark_state(desktop, portal_store::DesktopState::Stopped, Some("bench"))
                    .await
                    .expect("stop");
            }
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Open loop: each operation is due at its own time whatever the others do, so a slow
/// database shows up as latency (measured from when it was due), not as a lower rate.
async fn load(store: &Store, people: &People, active: usize, secs: u64) -> (BTreeMap<Op, Samples>, f64) {
    let results: Arc<Mutex<BTreeMap<Op, Samples>>> = Arc::default();
    let mut schedule = Vec::new();
    for (op, period) in [(Op::Peek, SWEEP), (Op::Heartbeat, HEARTBEAT), (Op::StartStop, LESSON)] {
        let per_sec = active as f64 / period.as_secs_f64();
        let n = (per_sec * secs as f64).round() as usize;
        for k in 0..n {
            let at = Duration::from_secs_f64(k as f64 / per_sec);
            schedule.push((at, op, k % active.min(people.rows.len())));
        }
    }
    schedule.sort_by_key(|(at, _, _)| *at);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (at, op, who) in schedule {
        let due = started + at;
        tokio::time::sleep_until(due.into()).await;
        let store = store.clone();
        let user = people.rows[who].clone();
        let results = results.clone();
        tasks.spawn(async move {
            run_op(&store, op, &user).await;
            let us = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
            results.lock().await.entry(op).or_default().0.push(us);
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let results = Arc::try_unwrap(results).ok().expect("all tasks done").into_inner();
    (results, elapsed)
}

/// CPU seconds all `postgres` processes have used so far (user + system, from /proc).
fn postgres_cpu_secs() -> f64 {
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": the fields after the comm's closing parenthesis.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the comm.
        let t = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += t(11) + t(12);
    }
    ticks as f64 / ticks_per_sec
}

async fn table_sizes(pool: &sqlx::PgPool) -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for table in ["users", "user_groups", "sessions", "desktops", "audit_log"] {
        // The table names are the constants above, never input.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT pg_total_relation_size('{table}')::BIGINT AS bytes, (SELECT COUNT(*) FROM {table})::BIGINT AS n"
        )))
        .fetch_one(pool)
        .await;
        if let Ok(row) = row {
            out.push((table.to_owned(), row.get::<i64, _>("n"), row.get::<i64, _>("bytes")));
        }
    }
    out
}

#[tokio::main]
async fn main() {
    let Ok(url) = std::env::var("BENCH_DATABASE_URL") else {
        eprintln!("BENCH_DATABASE_URL is not set: scripts/bench-store.sh starts a database and sets it");
        std::process::exit(2);
    };
    let users: usize = env_or("BENCH_USERS", 5000);
    let secs: u64 = env_or("BENCH_SECS", 10);
    let audit_rows: usize = env_or("BENCH_AUDIT_ROWS", 200_000);
    let active: Vec<usize> = std::env::var("BENCH_ACTIVE")
        .unwrap_or_else(|_| "500,1500,3000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let store = Store::connect(&url).await.expect("connect");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect for the bulk steps");

    let t = Instant::now();
    let people = populate(&store, users).await;
    let populate_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    fill_audit(&pool, audit_rows, users).await;
    let audit_secs = t.elapsed().as_secs_f64();

    println!("#### Setting up ({users} users, their sessions and desktops; {audit_rows} audit entries)\n");
    println!("| step | seconds | per second |\n|---|---|---|");
    println!(
        "| {users} users with two groups, a session and a desktop each | {populate_secs:.1} | {:.0} users |",
        users as f64 / populate_secs
    );
    println!(
        "| {audit_rows} audit entries, one statement | {audit_secs:.1} | {:.0} |",
        audit_rows as f64 / audit_secs
    );

    println!("\n#### The portal's query mix, open loop ({secs} s per step)\n");
    println!(
        "| active desktops | queries/s asked | PostgreSQL CPU (% of one core) | operation | count | p50 ms | p99 ms | max ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for n in active {
        // Per desktop per second: a peek is 2 queries (session, groups), a heartbeat 4.
        let asked = n as f64 * (2.0 / SWEEP.as_secs_f64() + 4.0 / HEARTBEAT.as_secs_f64() + 6.0 / LESSON.as_secs_f64());
        let cpu_before = postgres_cpu_secs();
        let (results, elapsed) = load(&store, &people, n, secs).await;
        let cpu = (postgres_cpu_secs() - cpu_before) / elapsed * 100.0;
        for (op, s) in &results {
            println!(
                "| {n} | {asked:.0} | {cpu:.0} | {} | {} | {:.2} | {:.2} | {:.2} |",
                op.name(),
                s.0.len(),
                s.quantile(0.5) as f64 / 1000.0,
                s.quantile(0.99) as f64 / 1000.0,
                s.quantile(1.0) as f64 / 1000.0
            );
        }
    }

    println!("\n#### The audit log page an admin opens (newest 50, filtered by user)\n");
    let mut s = Samples::default();
    for i in 0..50 {
        let t = Instant::now();
        store
            .audit_page(&AuditFilter {
                kind: None,
                user: Some(format!("schueler{}", i * 97 % users)),
                offset: 0,
                limit: 50,
            })
            .await
            .expect("audit page");
        s.0.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    println!(
        "p50 {:.2} ms, p99 {:.2} ms over 50 pages\n",
        s.quantile(0.5) as f64 / 1000.0,
        s.quantile(0.99) as f64 / 1000.0
    );

    let t = Instant::now();
    let signed_in = store.last_sign_ins().await.expect("last sign-ins").len();
    println!(
        "The admin's user list asks for everyone's last sign-in: {:.1} ms for {signed_in} users.\n",
        t.elapsed().as_secs_f64() * 1000.0
    );

    println!("#### Size on disk\n\n| table | rows | MiB |\n|---|---|---|");
    for (table, n, bytes) in table_sizes(&pool).await {
        println!("| {table} | {n} | {:.1} |", bytes as f64 / 1048576.0);
    }
}
