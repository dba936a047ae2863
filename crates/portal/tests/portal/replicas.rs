//! Several portals on one PostgreSQL: a session of one works on the other and ends on both,
//! a desktop started through one runs through the other (proxy and live events), and exactly
//! one of them leads the background work, handing it over when it stops.

use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::migrate::MigrateDatabase as _;

use crate::docker::*;
use crate::helpers::*;

/// A fresh PostgreSQL database on the server of `TEST_DATABASE_URL`, dropped by
/// [`TestDatabase::drop_now`]; `None` (a failure under CI) without a server.
struct TestDatabase {
    url: String,
}

impl TestDatabase {
    async fn create() -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "tests of several portals need TEST_DATABASE_URL; run scripts/start-postgres.sh"
            );
            eprintln!("skipped: TEST_DATABASE_URL is unset");
            return None;
        };
        sqlx::any::install_default_drivers();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&format!("ird_test_{:032x}", rand::random::<u128>()));
        let url = url.to_string();
        sqlx::Any::create_database(&url).await.unwrap();
        Some(TestDatabase { url })
    }

    async fn drop_now(self) {
        let _ = sqlx::Any::force_drop_database(&self.url).await;
    }
}

/// The backend process holding the leader's advisory lock, if any.
async fn lock_holder(db: &TestDatabase) -> Option<i32> {
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let pid: Option<(i32,)> = sqlx::query_as(
        "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database() LIMIT 1",
    )
    .fetch_optional(&mut conn)
    .await
    .unwrap();
    pid.map(|(p,)| p)
}

/// Waits until `check` holds, for at most `within`; whether it did.
async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until exactly one of `apps` leads; its index.
async fn the_leader(apps: &[&TestApp]) -> usize {
    let mut leader = None;
    let found = eventually(Duration::from_secs(10), async || {
        let leading: Vec<usize> = (0..apps.len())
            .filter(|i| apps[*i].state.leadership.is_leader())
            .collect();
        leader = leading.first().copied();
        leading.len() == 1
    })
    .await;
    assert!(found, "exactly one portal leads");
    // And it stays the only one (the others keep trying every two seconds).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let leading = apps.iter().filter(|a| a.state.leadership.is_leader()).count();
    assert_eq!(leading, 1, "still exactly one leader");
    leader.unwrap()
}

async fn metric_leader(app: &TestApp) -> String {
    let url = format!("http://{}/metrics", app.state.metrics_addr().unwrap());
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with("ird_leader "))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_session_of_one_portal_works_on_the_other_and_a_sign_out_ends_it_on_both() {
    let Some(db) = TestDatabase::create().await else { return };
    let url = db.url.clone();
    let mut a = spawn_app_with(&[], |c| c.database_url = Some(url)).await;
    let mut b = a.peer().await;
    let alice = sign_in(&a, "alice").await;
    let alice_on_b = b.rebind(&alice);
    assert_eq!(alice_on_b.get("/api/desktops").send().await.unwrap().status(), 200);
    // B now has the session in its cache; a sign-out on A ends it there within a second.
    let out = sign_out(&alice).await;
    assert_eq!(out.status(), 303);
    let started = Instant::now();
    let refused = eventually(Duration::from_secs(2), async || {
        alice_on_b.get("/api/desktops").send().await.unwrap().status() == 401
    })
    .await;
    assert!(refused, "B still accepts the signed-out session");
    println!("sign-out on A refused on B after {:?}", started.elapsed());

    // An administrator ending bob's sessions on B ends them on A too.
    let bob = sign_in(&a, "bob").await;
    assert_eq!(bob.get("/api/desktops").send().await.unwrap().status(), 200);
    let root = sign_in(&b, "root").await;
    let csrf = root.csrf().await;
    let ended = root
        .post("/api/admin/users/bob/end-sessions")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    let refused = eventually(Duration::from_secs(2), async || {
        bob.get("/api/desktops").send().await.unwrap().status() == 401
    })
    .await;
    assert!(refused, "A still accepts the ended session");

    // Exactly one leads, and says so in its metrics.
    the_leader(&[&a, &b]).await;
    // The database drops the leader's connection: it steps down, and one portal (either)
    // leads again on a new connection.
    let holder = lock_holder(&db).await.expect("the leader holds the lock");
    let mut admin = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT pg_terminate_backend({holder})")))
        .execute(&mut admin)
        .await
        .unwrap();
    let started = Instant::now();
    let new_holder = eventually(Duration::from_secs(10), async || {
        lock_holder(&db).await.is_some_and(|h| h != holder)
    })
    .await;
    assert!(
        new_holder,
        "nobody took the lead after the leader's connection was dropped"
    );
    println!(
        "lead taken again after a dropped connection after {:?}",
        started.elapsed()
    );
    // When the leader stops, the other takes over.
    let leader = the_leader(&[&a, &b]).await;
    let (leading, other) = if leader == 0 {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert_eq!(metric_leader(leading).await, "ird_leader 1");
    assert_eq!(metric_leader(other).await, "ird_leader 0");
    leading.stop().await;
    let started = Instant::now();
    let took_over = eventually(Duration::from_secs(8), async || other.state.leadership.is_leader()).await;
    assert!(took_over, "the other portal did not take the lead");
    println!("lead moved after {:?}", started.elapsed());
    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}

/// Reads `/api/events` until an event's data contains all of `needles`.
async fn wait_for_event(b: &Browser, needles: &[&str], within: Duration) -> bool {
    let mut resp = b.get("/api/events").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let deadline = Instant::now() + within;
    let mut text = String::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline.into(), resp.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text
            .split("\n\n")
            .any(|block| block.contains("event: desktop") && needles.iter().all(|n| block.contains(n)))
        {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_desktop_started_through_one_portal_runs_through_the_other_and_culling_moves_with_the_lead() {
    if !docker_ready() {
        return;
    }
    let Some(db) = TestDatabase::create().await else { return };
    let url = db.url.clone();
    let (mut a, scope) = docker_app("replicas", |c| {
        c.database_url = Some(url);
        c.limits.cull_interval_secs = 1;
    })
    .await;
    let mut b = a.peer().await;
    let alice = sign_in(&a, "alice").await;
    let alice_on_b = b.rebind(&alice);
    // B's live events see the start A makes.
    let watch = {
        let alice_on_b = b.rebind(&alice);
        tokio::spawn(async move {
            wait_for_event(
                &alice_on_b,
                &["\"id\":\"alice-fake\"", "\"state\":\"running\""],
                Duration::from_secs(60),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, started) = post_start(&alice, "fake").await;
    assert_eq!(status, 202, "{started}");
    let events_url = started["events_url"].as_str().unwrap();
    // The start's progress on A, and how it ends on B (which does not run it).
    let (events, on_b) = tokio::join!(
        follow_events(&alice, events_url),
        follow_events(&alice_on_b, events_url)
    );
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    assert_eq!(on_b[0]["state"], "starting", "{on_b:?}");
    assert_eq!(on_b.last().unwrap()["step"], "ready", "{on_b:?}");
    assert!(watch.await.unwrap(), "B's live events showed the desktop running");
    assert_eq!(desktop(&alice_on_b, "alice-fake").await["state"], "running");
    // B's proxy reaches the desktop A started: HTTP and the WebSocket.
    let page = alice_on_b.get("/desktop/alice-fake/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let mut ws = open_ws(&b, &alice_on_b, "alice-fake").await;
    echo(&mut ws, b"through B".to_vec()).await;

    // The leader stops; the other one culls the desktop idle for two hours.
    let leader = the_leader(&[&a, &b]).await;
    let (leading, other) = if leader == 0 {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    leading.stop().await;
    let alice_on_other = other.rebind(&alice);
    assert!(
        eventually(Duration::from_secs(8), async || other.state.leadership.is_leader()).await,
        "the other portal took the lead"
    );
    let two_hours_ago = desktop(&alice_on_other, "alice-fake").await["started_at"]
        .as_i64()
        .unwrap()
        - 7200;
    other
        .state
        .store
        .touch_activity("alice-fake", two_hours_ago)
        .await
        .unwrap();
    let d = wait_for_state(&alice_on_other, "alice-fake", "stopped", Duration::from_secs(10)).await;
    assert!(d["state_reason"].as_str().unwrap().starts_with("idle for"), "{d}");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &scope.container("alice-fake")]),
        "false"
    );
    a.stop().await;
    b.stop().await;
    drop(scope);
    db.drop_now().await;
}
