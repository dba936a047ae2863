//! Sessions and request safety: idle and absolute expiry, ending a user's sessions, CSRF on
//! every write, and the brake on password guessing per account and per address.

use std::time::Duration;

use crate::helpers::*;

async fn status_of_dashboard(b: &Browser) -> u16 {
    b.get("/").send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn an_unused_session_ends_after_the_idle_time() {
    let app = spawn_app_with(&[], |c| c.session_idle_secs = Some(1)).await;
    let b = sign_in(&app, "alice").await;
    assert_eq!(status_of_dashboard(&b).await, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(status_of_dashboard(&b).await, 303, "idle for 2 s with a 1 s idle limit");
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_expiry_even_when_used() {
    let app = spawn_app_with(&[], |c| {
        c.session_ttl_secs = Some(2);
        c.session_idle_minutes = 0;
    })
    .await;
    let b = sign_in(&app, "alice").await;
    for _ in 0..2 {
        assert_eq!(status_of_dashboard(&b).await, 200);
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(status_of_dashboard(&b).await, 303);
}

#[tokio::test]
async fn a_new_session_id_at_every_sign_in_and_sign_out_ends_it_server_side() {
    let app = spawn_app(&[]).await;
    let first = sign_in(&app, "alice").await;
    let second = sign_in(&app, "alice").await;
    assert_ne!(first.cookie_header(), second.cookie_header());
    let stolen = first.cookie_header().unwrap();
    let out = sign_out(&first).await;
    assert_eq!(out.status(), 303);
    let replay = Browser::new(&app)
        .get("/")
        .header("cookie", stolen)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 303, "a signed-out session cookie is worthless");
    assert_eq!(status_of_dashboard(&second).await, 200, "the other session lives on");
}

#[tokio::test]
async fn an_admin_ends_all_sessions_of_a_user() {
    let app = spawn_app(&[]).await;
    let alice1 = sign_in(&app, "alice").await;
    let alice2 = sign_in(&app, "alice").await;
    let bob = sign_in(&app, "bob").await;
    let root = sign_in(&app, "root").await;
    let path = "/api/admin/users/alice/end-sessions";

    // Not an admin: refused even with a valid token.
    let bob_csrf = bob.csrf().await;
    let resp = bob.post(path).header("x-csrf-token", &bob_csrf).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    // No token, a wrong token, a foreign origin: refused.
    let csrf = root.csrf().await;
    assert_eq!(root.post(path).send().await.unwrap().status(), 403);
    assert_eq!(
        root.post(path)
            .header("x-csrf-token", "nope")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let foreign = root
        .post(path)
        .header("x-csrf-token", &csrf)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert_eq!(status_of_dashboard(&alice1).await, 200);

    let done = root.post_json(path, &csrf).await;
    assert_eq!(done["ended"], 2);
    assert_eq!(status_of_dashboard(&alice1).await, 303);
    assert_eq!(status_of_dashboard(&alice2).await, 303);
    assert_eq!(status_of_dashboard(&bob).await, 200);
    let unknown = root
        .post("/api/admin/users/nobody/end-sessions")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn json_api_writes_need_the_csrf_token_and_our_origin() {
    let app = spawn_app(&[]).await;
    let b = sign_in(&app, "root").await;
    let csrf = b.csrf().await;
    for (path, method) in [
        ("/api/desktops", "POST"),
        ("/api/desktops/alice-ubuntu/stop", "POST"),
        ("/api/desktops/alice-ubuntu", "DELETE"),
        ("/api/admin/stop-all", "POST"),
        ("/api/admin/cleanup-stopped", "POST"),
        ("/api/admin/users/alice/end-sessions", "POST"),
        ("/logout", "POST"),
    ] {
        let method: reqwest::Method = method.parse().unwrap();
        let url = format!("{}{path}", app.url);
        let none = b
            .http
            .request(method.clone(), &url)
            .json(&serde_json::json!({"type": "ubuntu"}));
        assert_eq!(
            none.send().await.unwrap().status(),
            403,
            "{method} {path} without token"
        );
        let foreign = b
            .http
            .request(method.clone(), &url)
            .header("x-csrf-token", &csrf)
            .header("origin", "https://evil.example")
            .json(&serde_json::json!({"type": "ubuntu"}));
        assert_eq!(
            foreign.send().await.unwrap().status(),
            403,
            "{method} {path} from a foreign origin"
        );
    }
    assert_eq!(status_of_dashboard(&b).await, 200, "nothing above signed root out");
}

#[tokio::test]
async fn page_forms_without_the_token_change_nothing() {
    let app = spawn_app(&[]).await;
    let b = sign_in(&app, "root").await;
    let forms: [(&str, &[(&str, &str)]); 10] = [
        ("/desktops/start", &[("type", "ubuntu")]),
        ("/desktops/alice-ubuntu/stop", &[]),
        ("/teacher/grants", &[("username", "alice"), ("type", "ubuntu")]),
        ("/admin/desktops", &[("action", "stop-all")]),
        (
            "/admin/users",
            &[("username", "mallory"), ("role", "admin"), ("password", PASSWORD)],
        ),
        ("/admin/users/alice/role", &[("role", "admin")]),
        (
            "/admin/users/alice/password",
            &[("password", "taken over by a forged form")],
        ),
        ("/admin/users/alice/delete", &[]),
        ("/admin/branding", &[("school_name", "Forged")]),
        ("/logout", &[]),
    ];
    for (path, fields) in forms {
        for origin in [None, Some("https://evil.example")] {
            let mut req = b.post(path).form(fields);
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            let status = req.send().await.unwrap().status();
            assert!(
                status.is_client_error(),
                "{path} without a token ({origin:?}): {status}"
            );
        }
    }
    let alice = app.state.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(alice.role, portal_store::Role::Student);
    assert!(app.state.store.user_by_username("mallory").await.unwrap().is_none());
    assert_eq!(status_of_dashboard(&b).await, 200);
    assert_eq!(
        status_of_dashboard(&sign_in(&app, "alice").await).await,
        200,
        "alice's password unchanged"
    );
}

/// Signs in with a wrong password, as if from `ip` (through a trusted reverse proxy).
async fn wrong_password(app: &TestApp, username: &str, ip: &str) -> reqwest::Response {
    sign_in_from(app, username, "wrong", ip).await
}

#[tokio::test]
async fn guessing_one_account_from_many_addresses_is_slowed_down_with_the_wait_time() {
    let app = spawn_app_with(&[], |c| c.proxy.trusted_proxies = "127.0.0.1".parse().unwrap()).await;
    for i in 0..6 {
        let resp = wrong_password(&app, "alice", &format!("10.0.0.{i}")).await;
        assert_eq!(resp.status(), 401, "attempt {i}");
    }
    let slowed = wrong_password(&app, "alice", "10.0.1.1").await;
    assert_eq!(slowed.status(), 429);
    assert_eq!(slowed.headers()["retry-after"], "1");
    let text = slowed.text().await.unwrap();
    assert!(text.contains("Please wait 1 second(s)"), "{text}");
    assert_eq!(
        wrong_password(&app, "bob", "10.0.1.1").await.status(),
        401,
        "other accounts are not slowed down"
    );
}

#[tokio::test]
async fn guessing_is_braked_per_address_across_accounts() {
    let app = spawn_app_with(&[], |c| c.proxy.trusted_proxies = "127.0.0.1".parse().unwrap()).await;
    for i in 0..50 {
        assert_eq!(
            wrong_password(&app, &format!("user{i}"), "10.9.9.9").await.status(),
            401
        );
    }
    assert_eq!(wrong_password(&app, "alice", "10.9.9.9").await.status(), 429);
    assert_eq!(wrong_password(&app, "alice", "10.9.9.8").await.status(), 401);
}
