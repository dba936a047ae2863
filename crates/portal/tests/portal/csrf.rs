//! The CSRF check covers every state-changing route: the routes are read from the router's
//! source (`src/web/mod.rs`), so a route added there is covered without touching this test.

use crate::helpers::*;

/// A state-changing route as the router declares it.
#[derive(Debug)]
struct Write {
    method: reqwest::Method,
    /// With sample values for its parameters.
    path: String,
}

/// Every `.route("…", …)` of the router whose handlers take POST, PUT, PATCH or DELETE.
/// `any(…)` routes are left out: they are the desktops' own traffic and the API's JSON 404,
/// which change nothing on the portal.
fn writes_in_router() -> Vec<Write> {
    let source = include_str!("../../src/web/mod.rs");
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's text, up to its closing parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a .route( call closes");
        let call = &rest[..end];
        let methods: Vec<reqwest::Method> = [
            ("post(", reqwest::Method::POST),
            ("put(", reqwest::Method::PUT),
            ("patch(", reqwest::Method::PATCH),
            ("delete(", reqwest::Method::DELETE),
        ]
        .into_iter()
        .filter(|(name, _)| call.contains(name))
        .map(|(_, m)| m)
        .collect();
        if methods.is_empty() {
            continue;
        }
        let path = call
            .trim_start()
            .strip_prefix('"')
            .and_then(|p| p.split_once('"'))
            .map(|(p, _)| p)
            .unwrap_or_else(|| panic!("a state-changing route needs a literal path for this test: {call}"));
        let path = path
            .replace("{id}", "alice-ubuntu")
            .replace("{action}", "stop")
            .replace("{key}", "ubuntu")
            .replace("{username}", "bob")
            .replace("{student}", "u-bob")
            .replace("{space}", "home")
            .replace("{*path}", "x.txt");
        assert!(!path.contains('{'), "no sample value for a parameter of {path}");
        for method in methods {
            found.push(Write {
                method,
                path: path.clone(),
            });
        }
    }
    found
}

#[tokio::test]
async fn every_state_changing_route_refuses_a_request_without_the_token() {
    let writes = writes_in_router();
    // The router has some 30 today; far fewer means the reading above broke.
    assert!(writes.len() >= 25, "found only {writes:?}");
    for path in [
        "/login",
        "/logout",
        "/admin/branding/logo",
        "/api/desktops/alice-ubuntu",
    ] {
        assert!(writes.iter().any(|w| w.path == path), "{path} not found in {writes:?}");
    }
    let app = spawn_app(&[]).await;
    // An administrator, so no refusal comes from missing rights instead.
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    for w in &writes {
        let url = format!("{}{}", app.url.trim_end_matches('/'), w.path);
        let send = |req: reqwest::RequestBuilder| async move {
            let resp = req.header("accept", "application/json").send().await.unwrap();
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
        };
        let what = format!("{} {}", w.method, w.path);
        // No token at all, as a JSON call and as a form.
        let bare = send(root.http.request(w.method.clone(), &url)).await;
        assert_eq!(bare, (403, "csrf".to_owned()), "{what} without a token");
        let form = send(root.http.request(w.method.clone(), &url).form(&[("x", "1")])).await;
        assert_eq!(form, (403, "csrf".to_owned()), "{what} as a form without a token");
        // A wrong token.
        let wrong = send(
            root.http
                .request(w.method.clone(), &url)
                .header("x-csrf-token", "wrong")
                .form(&[("csrf_token", csrf.as_str())]),
        )
        .await;
        assert_eq!(wrong, (403, "csrf".to_owned()), "{what} with a wrong header token");
        // The right token from another site.
        let foreign = send(
            root.http
                .request(w.method.clone(), &url)
                .header("x-csrf-token", &csrf)
                .header("origin", "https://evil.example"),
        )
        .await;
        assert_eq!(foreign, (403, "csrf".to_owned()), "{what} from another origin");
    }
    // Nothing happened: root is still signed in and an admin.
    assert_eq!(root.get("/admin").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn json_writes_with_the_header_and_forms_with_the_field_pass() {
    let app = spawn_app(&[]).await;
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    let resp = root
        .post("/api/admin/cleanup-stopped")
        .header("x-csrf-token", &csrf)
        .header("origin", &app.origin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["removed"], 0, "{body}");
    // A JSON body the handler reads after the check: a broken one is the handler's 400.
    let start = |body: &'static str| {
        root.post("/api/desktops")
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = start("{").await.unwrap();
    assert_eq!(resp.status(), 400, "the handler read the body");
    let resp = start(r#"{"type": "no-such-type"}"#).await.unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_ne!(body["error"]["code"], "csrf", "{status} {body}");
    assert_ne!(body["error"]["code"], "bad_request", "{status} {body}");
    // A form with the token as a field, read by the check and again by the handler.
    let resp = root
        .post("/admin/branding")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("school_name", "Testschule"),
            ("primary_color", "#0b62c4"),
            ("audit_retention_days", "30"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(
        root.get("/")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("Testschule")
    );
}
