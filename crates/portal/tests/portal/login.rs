//! Sign-in, sessions and the pages around them.

use crate::helpers::*;

#[tokio::test]
async fn health_endpoints_answer() {
    let app = spawn_app(&[]).await;
    let b = Browser::new(&app);
    assert_eq!(b.get("/healthz").send().await.unwrap().status(), 200);
    let ready = b.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["store"]["ok"], true);
    assert_eq!(body["runtime"]["kind"], "static");
    assert!(app.state.routes.is_empty(), "no desktops configured, no routes");
}

#[tokio::test]
async fn login_form_has_the_documented_fields() {
    let app = spawn_app(&[]).await;
    let page = Browser::new(&app)
        .get("/login")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for field in ["name=\"username\"", "name=\"password\"", "name=\"csrf_token\""] {
        assert!(page.contains(field), "login form lacks {field}");
    }
}

#[tokio::test]
async fn right_password_gives_a_lax_httponly_session_cookie() {
    let app = spawn_app(&[]).await;
    let b = Browser::new(&app);
    let page = b.get("/login").send().await.unwrap().text().await.unwrap();
    let resp = b
        .post("/login")
        .form(&[
            ("username", "Alice"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_from(&page)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/");
    let cookies: Vec<_> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("ird_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    let dash = b.get("/").send().await.unwrap();
    assert_eq!(dash.status(), 200);
    assert!(dash.text().await.unwrap().contains("alice"));
}

#[tokio::test]
async fn https_public_url_gives_host_prefixed_secure_cookies() {
    let app = spawn_app_with(&[], |c| {
        c.public_url = Some("https://desktop.school.example/".parse().unwrap())
    })
    .await;
    let b = Browser::new(&app);
    let resp = b.get("/login").send().await.unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-") && cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn wrong_password_is_refused_in_the_users_language() {
    let app = spawn_app(&[]).await;
    let b = Browser::new(&app);
    let page = b.get("/login").send().await.unwrap().text().await.unwrap();
    let csrf = csrf_from(&page);
    for (lang, text) in [("de", "Passwort ist falsch"), ("en", "password is wrong")] {
        let resp = b
            .post("/login")
            .header("accept-language", lang)
            .form(&[
                ("username", "alice"),
                ("password", "wrong password"),
                ("csrf_token", &csrf),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.text().await.unwrap().contains(text), "{lang}");
    }
}

#[tokio::test]
async fn login_without_csrf_token_or_from_foreign_origin_is_refused() {
    let app = spawn_app(&[]).await;
    let b = Browser::new(&app);
    let page = b.get("/login").send().await.unwrap().text().await.unwrap();
    let missing = b
        .post("/login")
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 403);
    let foreign = b
        .post("/login")
        .header("origin", "https://evil.example")
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_from(&page)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let garbage = b
        .post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("%%%")
        .send()
        .await
        .unwrap();
    assert!(
        garbage.status() == 400 || garbage.status() == 403,
        "{}",
        garbage.status()
    );
}

#[tokio::test]
async fn repeated_failures_are_braked() {
    let app = spawn_app(&[]).await;
    let b = Browser::new(&app);
    let csrf = csrf_from(&b.get("/login").send().await.unwrap().text().await.unwrap());
    let mut last = 0;
    for _ in 0..6 {
        last = b
            .post("/login")
            .form(&[("username", "alice"), ("password", "nope nope"), ("csrf_token", &csrf)])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
    // Even the right password waits out the brake.
    let right = b
        .post("/login")
        .form(&[("username", "alice"), ("password", PASSWORD), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 429);
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_login_and_api_gets_401() {
    let app = spawn_app(&[]).await;
    let b = Browser::new(&app);
    let resp = b.get("/").header("accept", "text/html").send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/login?next=%2F");
    let api = b.get("/api/anything").send().await.unwrap();
    assert_eq!(api.status(), 404, "unknown API paths are 404 in JSON");
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = spawn_app(&[]).await;
    let b = sign_in(&app, "alice").await;
    let stolen_cookie = b.cookie_header().unwrap();
    let dash = b.get("/").send().await.unwrap().text().await.unwrap();
    let no_token = b.post("/logout").send().await.unwrap();
    assert_eq!(no_token.status(), 403, "logout needs the CSRF token");
    let out = b
        .post("/logout")
        .form(&[("csrf_token", csrf_from(&dash))])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    // The old cookie, replayed, no longer works.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/", app.url))
        .header("cookie", stolen_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 303);
}

#[tokio::test]
async fn language_switch_sets_a_cookie_and_redirects() {
    let app = spawn_app(&[]).await;
    let b = Browser::new(&app);
    let resp = b.get("/login?lang=en").send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(resp.headers()["set-cookie"].to_str().unwrap().starts_with("lang=en"));
    let page = b
        .get("/login")
        .header("accept-language", "de")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in"), "cookie beats Accept-Language");
}
