//! Sign-in with IServ against the testkit's real OpenID provider, over HTTP, in both URL
//! layouts, with every claim shape and every failure a person can run into.

use std::time::Duration;

use portal::Config;
use portal::config::ClientAuthMethod;
use portal_store::Role;
use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::oidc::{ClientAuth, Fault, Layout, OidcProvider, ProviderConfig, TestUser};

use crate::helpers::*;

/// A provider of `layout` with discovery and both client authentications.
pub(crate) async fn provider(layout: Layout) -> OidcProvider {
    OidcProvider::start(ProviderConfig::new(layout)).await.unwrap()
}

/// Client id and secret as registered at the test provider.
pub(crate) fn client(c: &mut Config) {
    c.oidc.client_id = Some("portal".into());
    c.oidc.client_secret = Some(SecretString::from("portal-secret"));
}

/// Discovery from the issuer.
pub(crate) fn with_discovery(idp: &OidcProvider) -> impl FnOnce(&mut Config) {
    let issuer = idp.issuer();
    move |c| {
        client(c);
        c.oidc.issuer = Some(issuer.parse().unwrap());
    }
}

/// Explicit endpoints, as the seed's `OAUTH_*` variables give them.
fn with_explicit_urls(idp: &OidcProvider) -> impl FnOnce(&mut Config) {
    let e = idp.endpoints();
    move |c| {
        client(c);
        c.oidc.authorize_url = Some(e.authorize.parse().unwrap());
        c.oidc.token_url = Some(e.token.parse().unwrap());
        c.oidc.userinfo_url = Some(e.userinfo.parse().unwrap());
        c.oidc.jwks_uri = Some(e.jwks.parse().unwrap());
    }
}

pub(crate) fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("{} without Location", resp.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// `/auth/login` → IServ's authorize endpoint → the callback URL IServ sends the browser to.
pub(crate) async fn to_callback(b: &Browser) -> String {
    let start = b.get("/auth/login?next=/").send().await.unwrap();
    assert_eq!(start.status(), 303, "{}", start.text().await.unwrap());
    let authorize = location(&start);
    let at_idp = b.http.get(&authorize).send().await.unwrap();
    assert_eq!(at_idp.status(), 302, "{}", at_idp.text().await.unwrap());
    location(&at_idp)
}

/// Opens the callback URL in the browser; JSON errors so tests can read the code.
pub(crate) async fn open_callback(b: &Browser, url: &str) -> reqwest::Response {
    b.http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
}

/// Opens the callback URL as a browser set to `lang` would (an HTML page on errors).
pub(crate) async fn open_in(b: &Browser, url: &str, lang: &str) -> reqwest::Response {
    b.http.get(url).header("accept-language", lang).send().await.unwrap()
}

/// The sign-in page's HTML.
async fn login_page(b: &Browser) -> String {
    b.get("/login").send().await.unwrap().text().await.unwrap()
}

/// The whole sign-in; returns the callback's answer.
pub(crate) async fn sign_in_iserv(b: &Browser) -> reqwest::Response {
    let callback = to_callback(b).await;
    open_callback(b, &callback).await
}

/// Signs in and expects to land on the dashboard as `username`.
pub(crate) async fn signed_in(app: &TestApp, username: &str) -> Browser {
    let b = Browser::new(app);
    let resp = sign_in_iserv(&b).await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    assert_eq!(location(&resp), "/");
    let dash = b.get("/").send().await.unwrap();
    assert_eq!(dash.status(), 200);
    let user = app.state.store.user_by_username(username).await.unwrap().unwrap();
    assert!(
        dash.text().await.unwrap().contains(&user.display_name),
        "dashboard names {username} ({})",
        user.display_name
    );
    b
}

/// The error code of a JSON error answer.
pub(crate) async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn auth_layout_with_discovery_signs_in_with_pkce_post_and_prefixed_claims() {
    let idp = provider(Layout::Auth).await;
    idp.set_user(TestUser::teacher("tom").groups_as_object().roles_detailed().prefixed());
    let app = spawn_app_with(&[], with_discovery(&idp)).await;

    signed_in(&app, "tom").await;

    let auth = &idp.authorize_requests()[0];
    assert_eq!(auth["code_challenge_method"], "S256");
    assert_eq!(auth["code_challenge"].len(), 43);
    assert!(auth["state"].len() >= 16 && auth["nonce"].len() >= 16, "{auth:?}");
    let scopes: Vec<&str> = auth["scope"].split(' ').collect();
    // Everything the newer layout offers, with the `iserv:` names.
    for s in Layout::Auth.default_scopes() {
        assert!(scopes.contains(&s.as_str()), "scope {s} missing in {scopes:?}");
    }
    let token = &idp.token_requests()[0];
    assert_eq!(token.auth_method, "post");
    assert!(token.form.contains_key("code_verifier"));
    assert!(idp.userinfo_requests() >= 1);
    let tom = app.state.store.user_by_username("tom").await.unwrap().unwrap();
    assert_eq!(tom.role, Role::Teacher);
    assert_eq!(tom.groups, ["lehrer"]);
    assert_eq!(
        tom.external_subject.as_deref(),
        Some(TestUser::teacher("tom").sub.as_str())
    );
}

#[tokio::test]
async fn oauth_v2_layout_without_discovery_uses_the_seed_urls_and_basic_auth() {
    let idp = OidcProvider::start(ProviderConfig {
        discovery: false,
        client_auth: ClientAuth::Basic,
        ..ProviderConfig::new(Layout::OauthV2)
    })
    .await
    .unwrap();
    idp.set_user(TestUser::student("anna"));
    let explicit = with_explicit_urls(&idp);
    let app = spawn_app_with(&[], |c| {
        explicit(c);
        c.oidc.client_auth = ClientAuthMethod::ClientSecretBasic;
    })
    .await;

    signed_in(&app, "anna").await;

    assert_eq!(idp.token_requests()[0].auth_method, "basic");
    let scopes = idp.authorize_requests()[0]["scope"].clone();
    assert!(scopes.contains("groups") && !scopes.contains("iserv:"), "{scopes}");
    let anna = app.state.store.user_by_username("anna").await.unwrap().unwrap();
    assert_eq!((anna.role, anna.groups), (Role::Student, vec!["5a".to_owned()]));
}

#[tokio::test]
async fn every_claim_shape_gives_the_right_role_and_groups() {
    let idp = provider(Layout::Auth).await;
    let app = spawn_app_with(&[], |c| {
        with_discovery(&idp)(c);
        c.oidc.teacher_groups = vec!["kollegium".into()];
        c.oidc.admin_groups = vec!["it".into()];
    })
    .await;
    let cases = [
        (TestUser::student("s1"), Role::Student, vec!["5a"]),
        (
            TestUser::student("s2").groups_as_object().prefixed(),
            Role::Student,
            vec!["5a"],
        ),
        (
            TestUser::student("s3").groups_as_list_of_objects(),
            Role::Student,
            vec!["5a"],
        ),
        (TestUser::teacher("t1").roles_detailed(), Role::Teacher, vec!["lehrer"]),
        (
            TestUser::teacher("t2").roles_detailed().prefixed(),
            Role::Teacher,
            vec!["lehrer"],
        ),
        // Teacher by group name alone (no role claim).
        (
            TestUser::named("t3").groups(&["kollegium", "7b"]),
            Role::Teacher,
            vec!["7b", "kollegium"],
        ),
        (TestUser::admin("a1"), Role::Admin, vec!["admins"]),
        (
            TestUser::named("a2").groups(&["it"]).groups_as_object(),
            Role::Admin,
            vec!["it"],
        ),
    ];
    for (user, role, groups) in cases {
        let login = user.login().unwrap().to_owned();
        idp.set_user(user);
        signed_in(&app, &login).await;
        let stored = app.state.store.user_by_username(&login).await.unwrap().unwrap();
        assert_eq!(stored.role, role, "{login}");
        assert_eq!(stored.groups, groups, "{login}");
    }
}

#[tokio::test]
async fn groups_are_refreshed_and_a_renamed_user_keeps_the_account() {
    let idp = provider(Layout::OauthV2).await;
    let app = spawn_app_with(&[], with_discovery(&idp)).await;
    let uuid = "6f1c2d3e-0000-4000-8000-000000000001";
    idp.set_user(TestUser::new(uuid, "anna").groups(&["5a"]));
    signed_in(&app, "anna").await;
    let before = app.state.store.user_by_username("anna").await.unwrap().unwrap();

    idp.set_user(TestUser::new(uuid, "anna.schmidt").groups(&["6a", "chor"]));
    signed_in(&app, "anna.schmidt").await;

    let after = app.state.store.user_by_username("anna.schmidt").await.unwrap().unwrap();
    assert_eq!(after.id, before.id, "same IServ uuid, same portal user");
    assert_eq!(after.groups, ["6a", "chor"]);
    assert!(app.state.store.user_by_username("anna").await.unwrap().is_none());
}

#[tokio::test]
async fn rotated_keys_are_fetched_again() {
    let idp = provider(Layout::Auth).await;
    idp.set_user(TestUser::student("anna"));
    let app = spawn_app_with(&[], with_discovery(&idp)).await;
    signed_in(&app, "anna").await;
    idp.rotate_keys();
    idp.rotate_keys();
    signed_in(&app, "anna").await;
}

#[tokio::test]
async fn each_broken_answer_gets_its_own_clear_error_and_no_session() {
    let idp = provider(Layout::Auth).await;
    idp.set_user(TestUser::student("anna"));
    let app = spawn_app_with(&[], with_discovery(&idp)).await;
    let cases = [
        (Fault::BadSignature, 502, "oidc_token_invalid"),
        (Fault::WrongAudience, 502, "oidc_token_invalid"),
        (Fault::WrongIssuer, 502, "oidc_token_invalid"),
        (Fault::Expired, 502, "oidc_token_expired"),
        (Fault::WrongNonce, 502, "oidc_nonce"),
        (Fault::UnknownKid, 502, "oidc_token_invalid"),
        (Fault::DenyConsent, 403, "oidc_denied"),
        (Fault::ServerError, 502, "oidc_provider_error"),
    ];
    for (fault, status, code) in cases {
        idp.set_fault(fault);
        let b = Browser::new(&app);
        let resp = sign_in_iserv(&b).await;
        assert!(
            resp.headers()
                .get("set-cookie")
                .is_none_or(|c| !c.to_str().unwrap().contains("ird_session="))
        );
        assert_eq!(error_code(resp).await, (status, code.to_owned()), "{fault:?}");
        assert_eq!(
            b.get("/").send().await.unwrap().status(),
            303,
            "{fault:?}: not signed in"
        );
    }
    idp.set_fault(Fault::None);
    signed_in(&app, "anna").await;
}

#[tokio::test]
async fn missing_username_and_foreign_groups_are_refused_with_a_page() {
    let idp = provider(Layout::OauthV2).await;
    let app = spawn_app_with(&[], |c| {
        with_discovery(&idp)(c);
        c.oidc.allowed_groups = vec!["5a".into(), "lehrer".into()];
    })
    .await;

    idp.set_user(TestUser::student("nobody").without("preferred_username"));
    let resp = sign_in_iserv(&Browser::new(&app)).await;
    assert_eq!(error_code(resp).await, (502, "oidc_no_username".into()));

    idp.set_user(TestUser::named("gast").groups(&["gaeste"]));
    let b = Browser::new(&app);
    let callback = to_callback(&b).await;
    let page = open_in(&b, &callback, "en").await;
    assert_eq!(page.status(), 403);
    let text = page.text().await.unwrap();
    assert!(text.contains("is not allowed to use this portal"), "{text}");
    assert!(app.state.store.user_by_username("gast").await.unwrap().is_none());
    assert_eq!(b.get("/").send().await.unwrap().status(), 303);

    idp.set_user(TestUser::student("anna"));
    signed_in(&app, "anna").await;
}

#[tokio::test]
async fn denied_consent_page_speaks_german_and_english() {
    let idp = provider(Layout::Auth).await;
    idp.set_fault(Fault::DenyConsent);
    let app = spawn_app_with(&[], with_discovery(&idp)).await;
    for (lang, words) in [("de", "abgelehnt"), ("en", "You declined")] {
        let b = Browser::new(&app);
        let callback = to_callback(&b).await;
        let page = open_in(&b, &callback, lang).await;
        assert_eq!(page.status(), 403);
        assert!(page.text().await.unwrap().contains(words), "{lang}");
    }
}

#[tokio::test]
async fn state_is_one_use_bound_to_the_browser_and_codes_cannot_be_reused() {
    let idp = provider(Layout::Auth).await;
    idp.set_user(TestUser::student("anna"));
    let app = spawn_app_with(&[], with_discovery(&idp)).await;

    // Replayed callback (same state twice).
    let b = Browser::new(&app);
    let callback = to_callback(&b).await;
    assert_eq!(open_callback(&b, &callback).await.status(), 303);
    assert_eq!(
        error_code(open_callback(&b, &callback).await).await,
        (400, "oidc_state".into())
    );

    // Made-up state.
    let bogus = format!("{}/auth/callback?code=x&state=made-up", app.url);
    assert_eq!(
        error_code(open_callback(&b, &bogus).await).await,
        (400, "oidc_state".into())
    );

    // Two tabs of one browser may sign in at the same time.
    let tabs = Browser::new(&app);
    let first = to_callback(&tabs).await;
    let second = to_callback(&tabs).await;
    assert_eq!(open_callback(&tabs, &second).await.status(), 303);
    assert_eq!(open_callback(&tabs, &first).await.status(), 303);

    // A callback URL pushed into another browser (login CSRF) signs nobody in.
    let victim = Browser::new(&app);
    let attacker = Browser::new(&app);
    let pushed = to_callback(&attacker).await;
    assert_eq!(
        error_code(open_callback(&victim, &pushed).await).await,
        (400, "oidc_state".into())
    );
    assert_eq!(victim.get("/").send().await.unwrap().status(), 303);

    // An already redeemed code under a fresh state: IServ refuses it.
    let used_code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let b2 = Browser::new(&app);
    let mut fresh = url::Url::parse(&to_callback(&b2).await).unwrap();
    let state = fresh.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    fresh
        .query_pairs_mut()
        .clear()
        .append_pair("code", &used_code)
        .append_pair("state", &state);
    assert_eq!(
        error_code(open_callback(&b2, fresh.as_str()).await).await,
        (400, "oidc_code_used".into())
    );
}

#[tokio::test]
async fn iserv_down_at_start_gives_503_then_works_once_it_is_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let app = spawn_app_with(&[], |c| {
        client(c);
        c.oidc.issuer = Some(issuer.parse().unwrap());
        c.oidc.timeout_secs = 1;
    })
    .await;
    let b = Browser::new(&app);
    let down = b
        .get("/auth/login")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    let text = down.text().await.unwrap();
    assert!(text.contains("IServ sign-in is currently unavailable"), "{text}");
    // The login page itself still works and offers IServ.
    let login = login_page(&b).await;
    assert!(login.contains("Mit IServ anmelden"));

    let idp = OidcProvider::start_on(listener, ProviderConfig::new(Layout::Auth))
        .await
        .unwrap();
    idp.set_user(TestUser::student("anna"));
    // Retries are spaced out (1 s, 2 s, …): poll until the portal has found IServ.
    let mut up = false;
    for _ in 0..60 {
        if b.get("/auth/login").send().await.unwrap().status() == 303 {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(up, "the portal found IServ once it came up");
    signed_in(&app, "anna").await;
}

#[tokio::test]
async fn login_page_offers_iserv_and_can_switch_the_password_form_off() {
    let idp = provider(Layout::Auth).await;
    let both = spawn_app_with(&[], with_discovery(&idp)).await;
    let page = login_page(&Browser::new(&both)).await;
    assert!(page.contains("Mit IServ anmelden") && page.contains("name=\"password\""));

    let only_iserv = spawn_app_with(&[], |c| {
        with_discovery(&idp)(c);
        c.local_login = false;
    })
    .await;
    let b = Browser::new(&only_iserv);
    let page = login_page(&b).await;
    assert!(page.contains("Mit IServ anmelden") && !page.contains("name=\"password\""));
    let post = b
        .post("/login")
        .form(&[("username", "alice"), ("password", PASSWORD), ("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403);
    assert!(post.text().await.unwrap().contains("mit IServ an"));

    let plain = spawn_app(&[]).await;
    let page = login_page(&Browser::new(&plain)).await;
    assert!(!page.contains("IServ anmelden") && page.contains("name=\"password\""));
    assert_eq!(
        Browser::new(&plain).get("/auth/login").send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn cookies_are_lax_httponly_and_host_prefixed_on_https() {
    let idp = provider(Layout::Auth).await;
    idp.set_user(TestUser::student("anna"));
    let app = spawn_app_with(&[], with_discovery(&idp)).await;
    let b = Browser::new(&app);
    let start = b.get("/auth/login").send().await.unwrap();
    let pending = start.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(pending.starts_with("ird_oidc=") && pending.contains("HttpOnly") && pending.contains("SameSite=Lax"));
    assert!(
        pending.contains("Max-Age=600") && !pending.contains("Secure"),
        "{pending}"
    );
    let at_idp = b.http.get(location(&start)).send().await.unwrap();
    let done = open_callback(&b, &location(&at_idp)).await;
    let cookies: Vec<String> = done
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies.iter().find(|c| c.starts_with("ird_session=")).unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax") && !session.contains("Secure"));

    let secure = spawn_app_with(&[], |c| {
        with_discovery(&idp)(c);
        c.public_url = Some("https://desktop.school.example/".parse().unwrap());
    })
    .await;
    let start = Browser::new(&secure).get("/auth/login").send().await.unwrap();
    let pending = start.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        pending.starts_with("__Host-ird_oidc=") && pending.contains("Secure"),
        "{pending}"
    );
    let authorize = location(&start);
    assert!(
        authorize.contains(&format!(
            "redirect_uri={}",
            url::form_urlencoded::byte_serialize(b"https://desktop.school.example/auth/callback").collect::<String>()
        )),
        "{authorize}"
    );
}

#[test]
fn seed_environment_names_configure_iserv_sign_in() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iserv-remote-desktop"))
        .arg("check-config")
        .env_clear()
        .env("FRONTEND_URL", "https://desktop.school.example")
        .env("OAUTH_CLIENT_ID", "portal")
        .env("OAUTH_CLIENT_SECRET", "portal-secret")
        .env(
            "OAUTH_AUTHORIZE_URL",
            "https://iserv.school.example/iserv/oauth/v2/auth",
        )
        .env("OAUTH_TOKEN_URL", "https://iserv.school.example/iserv/oauth/v2/token")
        .env(
            "OAUTH_USERINFO_URL",
            "https://iserv.school.example/iserv/public/oauth/userinfo",
        )
        .env("OAUTH_JWKS_URI", "https://iserv.school.example/iserv/public/jwk")
        .env("OAUTH_REDIRECT_URI", "https://desktop.school.example/auth/callback")
        .env("ROLE_ADMIN", "admins")
        .env("ROLE_TEACHER", "lehrer")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: Value = serde_json::from_str(stdout.split_once('\n').unwrap().1.trim()).unwrap();
    let oidc = &config["oidc"];
    assert_eq!(oidc["client_id"], "portal");
    assert_eq!(oidc["token_url"], "https://iserv.school.example/iserv/oauth/v2/token");
    assert_eq!(oidc["admin_groups"], json!(["admins"]));
    assert_eq!(oidc["teacher_groups"], json!(["lehrer"]));
    assert!(oidc.get("client_secret").is_none(), "secrets are not printed");
    assert!(!stdout.contains("portal-secret"));
}

/// Captures the portal's log during a full sign-in: no code, token, cookie or secret in it.
#[tokio::test]
async fn no_code_token_cookie_or_secret_in_the_log() {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || LogWriter(sink.clone()))
        .finish();
    // The test runtime is single-threaded, so the portal's tasks log through this default.
    let _guard = tracing::subscriber::set_default(subscriber);

    let idp = provider(Layout::Auth).await;
    idp.set_user(TestUser::teacher("tom"));
    let app = spawn_app_with(&[], with_discovery(&idp)).await;
    let b = signed_in(&app, "tom").await;
    idp.set_fault(Fault::BadSignature);
    let _ = sign_in_iserv(&Browser::new(&app)).await;

    let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    assert!(text.contains("signed in with IServ"), "the log is captured: {text}");
    let code = idp.token_requests()[0].form["code"].clone();
    let verifier = idp.token_requests()[0].form["code_verifier"].clone();
    let session = b.cookie_header().unwrap();
    let session = session.split("ird_session=").nth(1).unwrap().split(';').next().unwrap();
    for secret in [code.as_str(), verifier.as_str(), session, "portal-secret", "eyJ"] {
        assert!(!text.contains(secret), "the log contains {secret:?}");
    }
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// In Chromium: the button on the sign-in page leads through IServ back to the dashboard (the
/// page's form-action policy and the Lax cookies let the redirects through).
#[tokio::test]
async fn chromium_signs_in_with_the_iserv_button() {
    if !crate::browser::browser_ready() {
        return;
    }
    let idp = provider(Layout::Auth).await;
    idp.set_user(TestUser::teacher("tom").groups_as_object().prefixed());
    let app = spawn_app_with(&[], with_discovery(&idp)).await;
    let chrome = crate::browser::Chrome::start().await;
    chrome.goto(&app, "/login").await;
    chrome
        .client
        .find(fantoccini::Locator::Css("[data-role='iserv-sign-in']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    chrome
        .wait_until(
            "the dashboard after IServ",
            "return location.pathname === '/' && document.body.innerText.includes('Tom')",
        )
        .await;
    assert_eq!(idp.token_requests().len(), 1);
    chrome.close().await;
}

#[tokio::test]
async fn sign_ins_failures_and_sign_outs_are_in_the_audit_log() {
    use portal_store::{AuditFilter, AuditKind};
    let idp = provider(Layout::Auth).await;
    idp.set_user(TestUser::student("anna"));
    let app = spawn_app_with(&[], with_discovery(&idp)).await;
    let b = signed_in(&app, "anna").await;
    idp.set_fault(Fault::WrongNonce);
    let refused = sign_in_iserv(&Browser::new(&app)).await;
    assert_eq!(refused.status(), 502);

    let page = b.get("/").send().await.unwrap().text().await.unwrap();
    let out = b
        .post("/logout")
        .form(&[("csrf_token", csrf_from(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);

    let entries = |kind| {
        let store = app.state.store.clone();
        async move {
            let filter = AuditFilter {
                kind: Some(kind),
                user: None,
                offset: 0,
                limit: 10,
            };
            store.audit_page(&filter).await.unwrap().0
        }
    };
    let signed_in = entries(AuditKind::SignIn).await;
    assert_eq!(signed_in.len(), 1, "{signed_in:?}");
    assert_eq!(signed_in[0].username.as_deref(), Some("anna"));
    assert!(signed_in[0].detail.starts_with("IServ as student"), "{signed_in:?}");
    let failed = entries(AuditKind::SignInFailed).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].detail.contains("nonce"), "{failed:?}");
    let out = entries(AuditKind::SignOut).await;
    assert_eq!(out[0].username.as_deref(), Some("anna"), "{out:?}");
}

#[tokio::test]
async fn a_flood_of_started_sign_ins_does_not_push_out_a_real_one() {
    let idp = provider(Layout::Auth).await;
    let app = spawn_app_with(&[], |c| {
        with_discovery(&idp)(c);
        c.proxy.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    let b = Browser::new(&app);
    // The real sign-in starts at the portal before the flood; it gets its code at IServ only
    // afterwards (codes live a minute, and the flood may take longer on a busy machine).
    let start = b.get("/auth/login?next=/").send().await.unwrap();
    assert_eq!(start.status(), 303, "{}", start.text().await.unwrap());
    let authorize = location(&start);
    // More started sign-ins than the portal keeps in all (10 000), from one address.
    let flood = Browser::new(&app);
    for chunk in 0..(10_200 / 50) {
        let requests = (0..50).map(|i| {
            flood
                .get("/auth/login")
                .header("x-forwarded-for", format!("10.6.{}.{}", chunk % 4, i))
                .send()
        });
        for resp in futures_util::future::join_all(requests).await {
            assert_eq!(resp.unwrap().status(), 303);
        }
    }
    let at_idp = b.http.get(&authorize).send().await.unwrap();
    assert_eq!(at_idp.status(), 302, "{}", at_idp.text().await.unwrap());
    let resp = open_callback(&b, &location(&at_idp)).await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
}

/// A school moving over from the Flask version keeps the redirect URI registered in IServ
/// (`OAUTH_REDIRECT_URI=…/authorize`): the callback is served there, and the portal's own
/// pages cannot be configured as one.
#[tokio::test]
async fn the_flask_versions_redirect_uri_keeps_working() {
    let idp = provider(Layout::Auth).await;
    idp.set_user(TestUser::student("anna"));
    let discovery = with_discovery(&idp);
    let app = spawn_app_with(&[], |c| {
        discovery(c);
        c.oidc.redirect_uri = Some("http://127.0.0.1/authorize".parse().unwrap());
    })
    .await;
    let b = Browser::new(&app);
    let callback = to_callback(&b).await;
    let registered = format!("{}/authorize", app.url.trim_end_matches('/'));
    assert!(callback.starts_with(&format!("{registered}?")), "{callback}");
    assert_eq!(idp.authorize_requests()[0]["redirect_uri"], registered);
    let resp = open_callback(&b, &callback).await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    assert_eq!(b.get("/").send().await.unwrap().status(), 200);

    for taken in ["/files/home", "/api/x", "/login", "/"] {
        let mut config = portal::Config {
            public_url: Some("https://desk.example/".parse().unwrap()),
            ..portal::Config::default()
        };
        client(&mut config);
        config.oidc.issuer = Some("https://iserv.example".parse().unwrap());
        config.oidc.redirect_uri = Some(format!("https://desk.example{taken}").parse().unwrap());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("oidc.redirect_uri"), "{taken}: {err}");
    }
}
