//! Several portals on one PostgreSQL: a session of one works on the other and ends on both,
//! a desktop started through one runs through the other (proxy and live events), a desktop
//! origin's ticket and cookie from one work on the other, a portal whose listener was cut off
//! catches up, and exactly one of them leads the background work, handing it over when it
//! stops.

use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::migrate::MigrateDatabase as _;

use crate::desktop_origins::{
    DESK, closes_within, desktop_client, desktop_page, desktop_ws, origin, redeem, ticket_url,
};
use crate::docker::*;
use crate::help::{act, enter_as_helper, help_allowed, helper_ws};
use crate::helpers::*;
use crate::ui_teacher::add_member;

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

#[tokio::test]
async fn a_desktop_ticket_from_one_portal_works_once_on_any_and_its_cookie_on_all() {
    let Some(db) = TestDatabase::create().await else { return };
    let fake = fake_desktop("pw-a").await;
    let url = db.url.clone();
    let mut a = spawn_app_with(&[DesktopSpec::for_fake(DESK, &fake, "pw-a", &["alice"])], |c| {
        with_desktop_origins(c);
        c.database_url = Some(url);
    })
    .await;
    let mut b = a.peer().await;
    let (on_a, on_b) = (desktop_client(&a), desktop_client(&b));
    let to_b = |url: &str| url.replace(&origin(&a, DESK), &origin(&b, DESK));
    let alice = sign_in(&a, "alice").await;

    // A's view page hands over with a ticket that B redeems, once: a second try fails on
    // either portal.
    let ticket = ticket_url(&alice, DESK).await;
    assert_ne!(to_b(&ticket), ticket);
    let (status, cookie) = redeem(&on_b, &to_b(&ticket)).await;
    assert_eq!(status, 200, "a ticket of A redeems on B");
    let cookie = cookie.expect("the desktop host's cookie");
    assert_eq!(redeem(&on_a, &ticket).await, (403, None), "used on B, so gone on A");
    assert_eq!(redeem(&on_b, &to_b(&ticket)).await, (403, None), "and on B");
    // Redeemed on both at once: exactly one gets in.
    for _ in 0..5 {
        let ticket = ticket_url(&alice, DESK).await;
        let ticket_on_b = to_b(&ticket);
        let (x, y) = tokio::join!(redeem(&on_a, &ticket), redeem(&on_b, &ticket_on_b));
        let entered = [&x, &y].iter().filter(|r| r.0 == 200 && r.1.is_some()).count();
        assert_eq!(entered, 1, "{x:?} {y:?}");
    }
    // Only the hash is in the database.
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let value = cookie.split_once('=').unwrap().1;
    let (raw,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM desktop_cookies WHERE id = $1")
        .bind(value)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let (hashed,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM desktop_cookies WHERE id = $1")
        .bind(portal_store::handover_id(value))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!((raw, hashed), (0, 1));

    // The cookie B gave works on A as on B, HTTP and WebSocket.
    assert_eq!(desktop_page(&on_a, &a, &cookie).await, 200);
    assert_eq!(desktop_page(&on_b, &b, &cookie).await, 200);
    let (mut on_a_ws, _) = desktop_ws(&a, &cookie, &origin(&a, DESK)).await.unwrap();
    expect_rfb_greeting(&mut on_a_ws).await;
    let (mut ws, _) = desktop_ws(&b, &cookie, &origin(&b, DESK)).await.unwrap();
    expect_rfb_greeting(&mut ws).await;

    // A PDF preview URL made by A opens on B's preview origin.
    let csrf = alice.csrf().await;
    let put = crate::files::put_status(&alice, &csrf, "/api/files/home/a.pdf", b"%PDF-1.4 a".to_vec()).await;
    assert_eq!(put, 201);
    let resp = alice.get("/files/home/a.pdf?preview=1").send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let preview = resp.headers()["location"].to_str().unwrap().to_owned();
    let preview_on_b = preview.replace(&format!(":{}/", a.addr.port()), &format!(":{}/", b.addr.port()));
    assert_ne!(preview, preview_on_b);
    let plain = reqwest::Client::builder()
        .resolve("p0-preview.localhost", b.addr)
        .build()
        .unwrap();
    let pdf = plain.get(&preview_on_b).send().await.unwrap();
    assert_eq!(pdf.status(), 200, "{preview_on_b}");
    assert_eq!(pdf.bytes().await.unwrap().as_ref(), b"%PDF-1.4 a");

    // A sign-out on A closes the relay held on B within two seconds, and the cookie stops
    // working on both.
    let out = sign_out(&alice).await;
    assert_eq!(out.status(), 303);
    let started = Instant::now();
    assert!(
        closes_within(&mut ws, Duration::from_secs(2)).await,
        "B's relay still open two seconds after the sign-out on A"
    );
    println!("sign-out on A closed the relay on B after {:?}", started.elapsed());
    assert!(closes_within(&mut on_a_ws, Duration::from_secs(1)).await);
    assert_eq!(desktop_page(&on_a, &a, &cookie).await, 404);
    assert_eq!(desktop_page(&on_b, &b, &cookie).await, 404);
    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}

/// The backend processes of the portals' listening connections on `db`.
async fn listeners(db: &TestDatabase) -> Vec<i32> {
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let pids: Vec<(i32,)> =
        sqlx::query_as("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1")
            .bind(portal_store::LISTENER_NAME)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    pids.into_iter().map(|(p,)| p).collect()
}

async fn terminate(db: &TestDatabase, pid: i32) {
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT pg_terminate_backend({pid})")))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Waits until a listener not in `known` appears; its pid.
async fn new_listener(db: &TestDatabase, known: &[i32]) -> i32 {
    let mut found = None;
    let appeared = eventually(Duration::from_secs(10), async || {
        found = listeners(db).await.into_iter().find(|p| !known.contains(p));
        found.is_some()
    })
    .await;
    assert!(appeared, "no new listening connection appeared");
    found.unwrap()
}

async fn proxied_status(b: &Browser, id: &str) -> u16 {
    b.get(&format!("/desktop/{id}/"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until `b`'s portal proxies desktop `id` (with `routed`) or no longer does.
async fn routes_within(b: &Browser, id: &str, routed: bool, within: Duration) -> bool {
    eventually(within, async || (proxied_status(b, id).await == 200) == routed).await
}

#[tokio::test]
async fn a_portal_whose_listener_was_cut_off_reads_afresh_what_it_missed() {
    if !docker_ready() {
        return;
    }
    let Some(db) = TestDatabase::create().await else { return };
    let url = db.url.clone();
    let (mut a, scope) = docker_app("replicas-resync", |c| c.database_url = Some(url)).await;
    let on_a = new_listener(&db, &[]).await;
    let mut b = a.peer().await;
    let on_b = new_listener(&db, &[on_a]).await;
    let alice = sign_in(&a, "alice").await;
    let alice_on_b = b.rebind(&alice);
    let (status, started, events) = start_desktop(&alice, "fake").await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    assert!(
        routes_within(&alice_on_b, "alice-fake", true, Duration::from_secs(10)).await,
        "B routes the desktop A started"
    );

    // B misses a notification (its route table forgot the desktop) and then loses its
    // listener: the reconnect reads the routes afresh.
    b.state.routes.remove("alice-fake");
    assert_ne!(proxied_status(&alice_on_b, "alice-fake").await, 200);
    terminate(&db, on_b).await;
    let cut = Instant::now();
    assert!(
        routes_within(&alice_on_b, "alice-fake", true, Duration::from_secs(10)).await,
        "B did not resync its routes after its listener was cut off"
    );
    println!("B routed again {:?} after its listener was cut off", cut.elapsed());
    let on_b = new_listener(&db, &[on_a, on_b]).await;
    assert!(listeners(&db).await.contains(&on_a), "A's listener was left alone");

    // Cut off again while A stops the desktop and ends bob's session: B sees both.
    let bob = sign_in(&a, "bob").await;
    let bob_on_b = b.rebind(&bob);
    assert_eq!(bob_on_b.get("/api/desktops").send().await.unwrap().status(), 200);
    terminate(&db, on_b).await;
    let csrf = alice.csrf().await;
    let stopped = alice.post_json("/api/desktops/alice-fake/stop", &csrf).await;
    assert!(stopped.is_object(), "{stopped}");
    assert_eq!(sign_out(&bob).await.status(), 303);
    let d = wait_for_state(&alice_on_b, "alice-fake", "stopped", Duration::from_secs(30)).await;
    assert_eq!(d["state"], "stopped");
    assert!(
        routes_within(&alice_on_b, "alice-fake", false, Duration::from_secs(5)).await,
        "B still routes the desktop A stopped"
    );
    assert!(
        eventually(Duration::from_secs(3), async || {
            bob_on_b.get("/api/desktops").send().await.unwrap().status() == 401
        })
        .await,
        "B still accepts the session ended on A"
    );
    new_listener(&db, &[on_a, on_b]).await;
    a.stop().await;
    b.stop().await;
    drop(scope);
    db.drop_now().await;
}

#[tokio::test]
async fn a_help_grant_given_through_one_portal_lets_the_teacher_in_through_the_other() {
    let Some(db) = TestDatabase::create().await else { return };
    let kasm = fake_desktop("pw-sam").await;
    let url = db.url.clone();
    let mut a = spawn_app_with(&[DesktopSpec::for_fake("sam-lab", &kasm, "pw-sam", &["sam"])], |c| {
        with_desktop_origins(c);
        c.database_url = Some(url);
    })
    .await;
    let mut b = a.peer().await;
    add_member(&a, "tina", portal_store::Role::Teacher, &["5a"]).await;
    add_member(&a, "sam", portal_store::Role::Student, &["5a"]).await;
    let (tina, sam) = (sign_in(&a, "tina").await, sign_in(&a, "sam").await);
    let tina_on_b = b.rebind(&tina);
    assert!(
        enter_as_helper(&b, &tina_on_b, "sam-lab").await.is_none(),
        "no grant yet"
    );

    // Sam allows tina's help on A; tina enters through B.
    help_allowed(&sam, &tina, "sam-lab").await;
    let granted = Instant::now();
    assert!(
        eventually(Duration::from_secs(2), async || {
            tina_on_b
                .get("/teacher/help/sam-lab/open")
                .send()
                .await
                .unwrap()
                .status()
                == 303
        })
        .await,
        "B does not know the grant given on A"
    );
    println!("the grant given on A counted on B after {:?}", granted.elapsed());
    let (_, mut ws) = helper_ws(&b, &tina_on_b, "sam-lab").await;
    expect_rfb_greeting(&mut ws).await;

    // Sam ends it on A: tina's WebSocket on B closes, and B lets her in no more.
    assert_eq!(act(&sam, "/help/sam-lab/close").await.0, 303);
    let ended = Instant::now();
    assert!(
        closes_within(&mut ws, Duration::from_secs(2)).await,
        "tina's relay on B outlived the end of the grant on A"
    );
    println!(
        "the end on A closed the helper's relay on B after {:?}",
        ended.elapsed()
    );
    assert!(enter_as_helper(&b, &tina_on_b, "sam-lab").await.is_none());
    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn an_iserv_sign_in_started_on_one_portal_finishes_on_the_other_once() {
    let Some(db) = TestDatabase::create().await else { return };
    let idp = crate::oidc::provider(testkit::oidc::Layout::Auth).await;
    idp.set_user(testkit::oidc::TestUser::student("anna"));
    let url = db.url.clone();
    let iserv = crate::oidc::with_discovery(&idp);
    let mut a = spawn_app_with(&[], move |c| {
        iserv(c);
        c.database_url = Some(url);
    })
    .await;
    // Behind one load balancer every replica has the same public URL and redirect URI: A's.
    let mut b = a.replica().await;

    // The browser starts on A; the load balancer sends IServ's redirect back to B.
    let on_a = Browser::new(&a);
    let callback = crate::oidc::to_callback(&on_a).await;
    let mut to_b = url::Url::parse(&callback).unwrap();
    to_b.set_port(url::Url::parse(&b.url).unwrap().port()).unwrap();
    let on_b = b.rebind(&on_a);
    let done = crate::oidc::open_callback(&on_b, to_b.as_str()).await;
    assert_eq!(done.status(), 303, "{}", done.text().await.unwrap());
    assert_eq!(on_b.get("/api/desktops").send().await.unwrap().status(), 200);
    assert_eq!(on_a.get("/api/desktops").send().await.unwrap().status(), 200);

    // Used on B, the same callback is refused on A (and on B).
    for at in [&on_a, &on_b] {
        let replay = if std::ptr::eq(at, &on_a) {
            callback.clone()
        } else {
            to_b.to_string()
        };
        assert_eq!(
            crate::oidc::error_code(crate::oidc::open_callback(at, &replay).await).await,
            (400, "oidc_state".into())
        );
    }

    // A callback pushed into another browser is refused on the other portal too.
    let attacker = Browser::new(&a);
    let pushed = crate::oidc::to_callback(&attacker).await;
    let mut pushed_to_b = url::Url::parse(&pushed).unwrap();
    pushed_to_b.set_port(url::Url::parse(&b.url).unwrap().port()).unwrap();
    let victim = Browser::new(&b);
    assert_eq!(
        crate::oidc::error_code(crate::oidc::open_callback(&victim, pushed_to_b.as_str()).await).await,
        (400, "oidc_state".into())
    );
    assert_eq!(victim.get("/api/desktops").send().await.unwrap().status(), 401);

    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}
