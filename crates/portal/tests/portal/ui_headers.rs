//! Security headers on the portal's pages (CSP without inline script, framing by the portal
//! only, nosniff, same-origin referrers), none added to what a desktop serves, and pages
//! that need nothing the policy forbids (no inline script, style or event handlers).

use reqwest::Response;

use crate::helpers::*;
use crate::ui_teacher::add_member;

fn header<'a>(resp: &'a Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

fn assert_portal_headers(resp: &Response, what: &str) {
    let csp = header(resp, "content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self';",
        "style-src 'self';",
        "img-src 'self' data:",
        "frame-src 'self'",
        "frame-ancestors 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{what}: CSP lacks {directive}: {csp:?}");
    }
    assert!(!csp.contains("unsafe"), "{what}: {csp}");
    assert_eq!(header(resp, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header(resp, "referrer-policy"), "same-origin", "{what}");
}

/// What the policy would block: `<script>` without `src` (other than JSON data blocks),
/// `style=` attributes, `<style>` elements and `on…=` handlers.
fn assert_no_inline_code(page: &str, what: &str) {
    let lower = page.to_lowercase();
    for (i, _) in lower.match_indices("<script") {
        let tag = &lower[i..i + lower[i..].find('>').unwrap()];
        assert!(
            tag.contains(" src=") || tag.contains("type=\"application/json\""),
            "{what}: inline script {tag}"
        );
    }
    assert!(!lower.contains("<style"), "{what}: <style> element");
    assert!(!lower.contains(" style=\""), "{what}: style attribute");
    for handler in [" onclick=", " onload=", " onerror=", " onsubmit=", " onchange="] {
        assert!(!lower.contains(handler), "{what}: {handler} handler");
    }
}

#[tokio::test]
async fn portal_pages_carry_security_headers_and_no_inline_code() {
    let fake = fake_desktop("pw-a").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])]).await;
    let anonymous = Browser::new(&app);
    let login = anonymous.get("/login").send().await.unwrap();
    assert_portal_headers(&login, "/login");
    assert_no_inline_code(&login.text().await.unwrap(), "/login");
    let missing = anonymous.get("/no-such-page").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_portal_headers(&missing, "a 404 page");

    add_member(&app, "tina", portal_store::Role::Teacher, &["5a"]).await;
    for (user, path) in [
        ("alice", "/"),
        ("alice", "/view/lab-a"),
        ("alice", "/desktops/lab-a"),
        ("root", "/admin"),
        ("tina", "/teacher"),
    ] {
        let b = sign_in(&app, user).await;
        let resp = b.get(path).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_portal_headers(&resp, path);
        assert_no_inline_code(&resp.text().await.unwrap(), path);
    }
    let alice = sign_in(&app, "alice").await;
    let api = alice.get("/api/desktops").send().await.unwrap();
    assert_portal_headers(&api, "the JSON API");
    for script in ["/static/portal.js", "/static/dashboard.js", "/static/view.js"] {
        let resp = alice.get(script).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{script}");
        assert_eq!(
            header(&resp, "content-type"),
            "text/javascript; charset=utf-8",
            "{script}"
        );
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff", "{script}");
    }
    assert_eq!(alice.get("/static/nope.js").send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn desktop_responses_keep_their_own_headers() {
    let fake = fake_desktop("pw-a").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])]).await;
    let alice = sign_in(&app, "alice").await;
    let resp = alice
        .get("/desktop/lab-a/?path=desktop/lab-a/websockify")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "cross-origin-embedder-policy"), "require-corp");
    // The Kasm client runs inline code and sets its own policy; the portal adds none, and
    // nothing that would stop the view page from framing it.
    for name in ["content-security-policy", "x-frame-options", "referrer-policy"] {
        assert!(resp.headers().get(name).is_none(), "{name} added to a desktop response");
    }
    assert!(resp.text().await.unwrap().contains("Fake KasmVNC"));
}

#[tokio::test]
async fn forms_may_go_to_iserv_when_sign_in_with_iserv_is_configured() {
    let app = spawn_app_with(&[], |c| {
        c.oidc.client_id = Some("portal".into());
        c.oidc.client_secret = Some(secrecy::SecretString::from("s3cret".to_owned()));
        c.oidc.issuer = Some("https://iserv.example:8443/".parse().unwrap());
    })
    .await;
    let login = Browser::new(&app).get("/login").send().await.unwrap();
    let csp = header(&login, "content-security-policy");
    assert!(
        csp.contains("form-action 'self' https://iserv.example:8443"),
        "the sign-in redirect to IServ is allowed: {csp}"
    );
    assert!(!csp.contains("script-src 'self' https://iserv"), "{csp}");
}
