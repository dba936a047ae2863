//! The test OpenID provider behaves like a strict IServ: checked over real HTTP with reqwest, ID
//! tokens verified with jsonwebtoken (an independent JWT implementation).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use testkit::oidc::{ClientAuth, Fault, Layout, OidcProvider, ProviderConfig, TestUser};

const REDIRECT: &str = "http://127.0.0.1:5020/auth/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-0123456789";

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn challenge(verifier: &str) -> String {
    B64URL.encode(Sha256::digest(verifier.as_bytes()))
}

async fn start(layout: Layout) -> OidcProvider {
    OidcProvider::start(ProviderConfig::new(layout)).await.unwrap()
}

/// A complete, valid authorization request for `provider`.
fn authorize_params(provider: &OidcProvider) -> BTreeMap<&'static str, String> {
    let scope = provider.config().scopes_supported.join(" ");
    BTreeMap::from([
        ("response_type", "code".to_owned()),
        ("client_id", "portal".to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("scope", scope),
        ("state", "state-123".to_owned()),
        ("nonce", "nonce-456".to_owned()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
    ])
}

async fn authorize(provider: &OidcProvider, params: &BTreeMap<&'static str, String>) -> reqwest::Response {
    http()
        .get(provider.endpoints().authorize)
        .query(params)
        .send()
        .await
        .unwrap()
}

/// The query parameters of a redirect's Location.
fn location_params(response: &reqwest::Response) -> BTreeMap<String, String> {
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[LOCATION].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

/// Signs in at the authorize endpoint and returns the code.
async fn code_for(provider: &OidcProvider) -> String {
    let params = location_params(&authorize(provider, &authorize_params(provider)).await);
    assert_eq!(params["state"], "state-123");
    params["code"].clone()
}

fn token_form(code: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("code_verifier", VERIFIER.to_owned()),
    ])
}

/// POSTs `form` to the token endpoint with HTTP Basic client authentication.
async fn token_basic(provider: &OidcProvider, form: &BTreeMap<&'static str, String>) -> reqwest::Response {
    http()
        .post(provider.endpoints().token)
        .basic_auth("portal", Some("portal-secret"))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Code flow with PKCE to the token response.
async fn sign_in(provider: &OidcProvider) -> Value {
    let code = code_for(provider).await;
    let response = token_basic(provider, &token_form(&code)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn get_json(url: &str) -> Value {
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    response.json().await.unwrap()
}

async fn userinfo(provider: &OidcProvider, access_token: &str) -> reqwest::Response {
    http()
        .get(provider.endpoints().userinfo)
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

/// Verifies `id_token` against the provider's JWKS; returns the claims.
async fn verify(provider: &OidcProvider, id_token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(id_token)?;
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(get_json(&provider.endpoints().jwks).await).unwrap();
    let kid = header.kid.expect("ID token header has a kid");
    let Some(jwk) = jwks.find(&kid) else {
        return Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into());
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["portal"]);
    validation.set_issuer(&[provider.issuer()]);
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk)?, &validation)?;
    Ok(data.claims)
}

#[tokio::test]
async fn code_flow_with_pkce_yields_a_verifiable_id_token_and_userinfo() {
    let provider = start(Layout::Auth).await;
    provider.set_user(TestUser::teacher("tom"));

    let tokens = sign_in(&provider).await;

    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(
        tokens["scope"],
        "openid profile email iserv:groups iserv:roles iserv:uuid"
    );
    let claims = verify(&provider, tokens["id_token"].as_str().unwrap()).await.unwrap();
    let tom = TestUser::teacher("tom");
    assert_eq!(claims["sub"], json!(tom.sub));
    assert_eq!(claims["nonce"], "nonce-456");
    assert_eq!(claims["preferred_username"], "tom");
    assert_eq!(claims["roles"], json!([{ "id": "ROLE_TEACHER" }]));
    assert_eq!(claims["groups"], json!(["lehrer"]));
    assert_eq!(claims["uuid"], json!(tom.sub));
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 300);
    assert!(claims["auth_time"].as_u64().unwrap() <= iat);

    let info = userinfo(&provider, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info.status(), StatusCode::OK);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["sub"], json!(tom.sub));
    assert_eq!(info["groups"], json!(["lehrer"]));
    assert_eq!(info["email"], "tom@school.example");
    assert_eq!(provider.userinfo_requests(), 1);
    assert_eq!(provider.authorize_requests().len(), 1);
    assert_eq!(provider.token_requests()[0].auth_method, "basic");
}

/// POSTs `form` to the token endpoint with the client id and secret as form fields.
async fn token_post(provider: &OidcProvider, form: &BTreeMap<&'static str, String>) -> reqwest::Response {
    let mut form = form.clone();
    form.insert("client_id", "portal".to_owned());
    form.insert("client_secret", "portal-secret".to_owned());
    http()
        .post(provider.endpoints().token)
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Asserts an RFC 6749 5.2 error answer; returns its description.
async fn oauth_error(response: reqwest::Response, status: StatusCode, error: &str) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    body["error_description"].as_str().unwrap().to_owned()
}

/// Asserts that `form` (sent with HTTP Basic) gets a 400 with `error`; returns its description.
async fn token_refused(provider: &OidcProvider, form: &BTreeMap<&'static str, String>, error: &str) -> String {
    oauth_error(token_basic(provider, form).await, StatusCode::BAD_REQUEST, error).await
}

/// Asserts a 400 from the authorize endpoint that is not redirected; returns its text.
async fn authorize_refused(provider: &OidcProvider, params: &BTreeMap<&'static str, String>) -> String {
    let response = authorize(provider, params).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());
    response.text().await.unwrap()
}

// ---- discovery and JWKS ----

#[tokio::test]
async fn discovery_of_the_newer_layout_names_its_endpoints_scopes_and_methods() {
    let provider = start(Layout::Auth).await;
    let issuer = provider.issuer();

    let doc = get_json(&format!("{issuer}/.well-known/openid-configuration")).await;

    assert!(issuer.starts_with("http://127.0.0.1:") && !issuer.ends_with('/'));
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["authorization_endpoint"], format!("{issuer}/iserv/auth/auth"));
    assert_eq!(doc["token_endpoint"], format!("{issuer}/iserv/auth/public/token"));
    assert_eq!(doc["userinfo_endpoint"], format!("{issuer}/iserv/auth/userinfo"));
    assert_eq!(doc["jwks_uri"], format!("{issuer}/iserv/auth/public/jwk"));
    assert_eq!(
        doc["scopes_supported"],
        json!([
            "openid",
            "profile",
            "email",
            "iserv:groups",
            "iserv:roles",
            "iserv:uuid"
        ])
    );
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    let claims = doc["claims_supported"].as_array().unwrap();
    for claim in [
        "sub",
        "preferred_username",
        "name",
        "email",
        "iserv:groups",
        "iserv:roles",
        "iserv:uuid",
    ] {
        assert!(claims.contains(&json!(claim)), "{claim} missing from {claims:?}");
    }
    let endpoints = provider.endpoints();
    assert_eq!(endpoints.authorize, doc["authorization_endpoint"]);
    assert_eq!(endpoints.jwks, doc["jwks_uri"]);
}

#[tokio::test]
async fn discovery_of_the_older_layout_names_its_endpoints_scopes_and_methods() {
    let mut cfg = ProviderConfig::new(Layout::OauthV2);
    cfg.client_auth = ClientAuth::Post;
    let provider = OidcProvider::start(cfg).await.unwrap();
    let issuer = provider.issuer();

    let doc = get_json(&format!("{issuer}/.well-known/openid-configuration")).await;

    assert_eq!(doc["authorization_endpoint"], format!("{issuer}/iserv/oauth/v2/auth"));
    assert_eq!(doc["token_endpoint"], format!("{issuer}/iserv/oauth/v2/token"));
    assert_eq!(
        doc["userinfo_endpoint"],
        format!("{issuer}/iserv/public/oauth/userinfo")
    );
    assert_eq!(doc["jwks_uri"], format!("{issuer}/iserv/public/jwk"));
    assert_eq!(
        doc["scopes_supported"],
        json!(["openid", "profile", "email", "groups", "roles", "uuid"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_post"])
    );
    assert!(doc["claims_supported"].as_array().unwrap().contains(&json!("groups")));
}

#[tokio::test]
async fn without_discovery_the_well_known_document_is_404_but_the_flow_works() {
    let mut cfg = ProviderConfig::new(Layout::OauthV2);
    cfg.discovery = false;
    let provider = OidcProvider::start(cfg).await.unwrap();

    let response = http()
        .get(format!("{}/.well-known/openid-configuration", provider.issuer()))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let tokens = sign_in(&provider).await;
    verify(&provider, tokens["id_token"].as_str().unwrap()).await.unwrap();
}

#[tokio::test]
async fn jwks_lists_rsa_signing_keys() {
    let provider = start(Layout::Auth).await;

    let jwks = get_json(&provider.endpoints().jwks).await;

    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["kid"], provider.current_kid());
    assert_eq!(key["e"], "AQAB");
    // 2048-bit modulus: 256 bytes, 342 base64url characters.
    assert_eq!(key["n"].as_str().unwrap().len(), 342);
}

#[tokio::test]
async fn rotation_signs_with_a_new_kid_and_keeps_the_previous_key_published() {
    let provider = start(Layout::Auth).await;
    let before = sign_in(&provider).await;
    let first_kid = provider.current_kid();

    provider.rotate_keys();

    let second_kid = provider.current_kid();
    assert_ne!(first_kid, second_kid);
    let kids = |jwks: Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        kids(get_json(&provider.endpoints().jwks).await),
        [second_kid.clone(), first_kid.clone()]
    );
    let after = sign_in(&provider).await;
    let after_token = after["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(after_token).unwrap().kid.unwrap(),
        second_kid
    );
    verify(&provider, after_token).await.unwrap();
    verify(&provider, before["id_token"].as_str().unwrap()).await.unwrap();

    provider.rotate_keys();

    let third_kid = provider.current_kid();
    assert_eq!(
        kids(get_json(&provider.endpoints().jwks).await),
        [third_kid, second_kid]
    );
    assert!(verify(&provider, before["id_token"].as_str().unwrap()).await.is_err());
}

// ---- authorize ----

#[tokio::test]
async fn authorize_names_each_missing_parameter_and_does_not_redirect() {
    let provider = start(Layout::Auth).await;
    for name in [
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "scope",
    ] {
        let mut params = authorize_params(&provider);
        params.remove(name);

        let text = authorize_refused(&provider, &params).await;

        assert!(text.contains(&format!("{name} is missing")), "{name}: {text}");
    }
    assert_eq!(provider.authorize_requests().len(), 8);
}

#[tokio::test]
async fn authorize_refuses_wrong_values_with_a_precise_text() {
    let provider = start(Layout::Auth).await;
    let cases: [(&str, &str, &str); 6] = [
        ("response_type", "token", "response_type must be \"code\""),
        ("client_id", "someone-else", "not a registered client"),
        ("redirect_uri", "javascript:alert(1)", "not an absolute http(s) URL"),
        (
            "code_challenge_method",
            "plain",
            "code_challenge_method must be \"S256\"",
        ),
        ("code_challenge", "too-short", "base64url SHA-256"),
        ("scope", "profile email", "scope must include openid"),
    ];
    for (name, value, expected) in cases {
        let mut params = authorize_params(&provider);
        params.insert(name, value.to_owned());

        let text = authorize_refused(&provider, &params).await;

        assert!(text.contains(expected), "{name}={value}: {text}");
    }
}

#[tokio::test]
async fn authorize_refuses_a_parameter_given_twice() {
    let provider = start(Layout::Auth).await;
    let url = format!("{}&state=again", {
        let mut url = url::Url::parse(&provider.endpoints().authorize).unwrap();
        url.query_pairs_mut().extend_pairs(authorize_params(&provider));
        url
    });

    let response = http().get(url).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("state is given more than once"));
}

#[tokio::test]
async fn authorize_redirects_code_and_state_and_records_the_request() {
    let provider = start(Layout::OauthV2).await;
    let mut params = authorize_params(&provider);
    params.insert("redirect_uri", format!("{REDIRECT}?from=portal"));

    let response = authorize(&provider, &params).await;

    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    let query: BTreeMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query["from"], "portal");
    assert_eq!(query["state"], "state-123");
    assert!(query["code"].len() >= 40);
    let seen = provider.authorize_requests();
    assert_eq!(seen[0]["nonce"], "nonce-456");
    assert_eq!(seen[0]["scope"], "openid profile email groups roles uuid");
}

#[tokio::test]
async fn an_unknown_scope_is_redirected_as_invalid_scope() {
    let provider = start(Layout::OauthV2).await;
    let mut params = authorize_params(&provider);
    params.insert("scope", "openid iserv:groups".to_owned());

    let query = location_params(&authorize(&provider, &params).await);

    assert_eq!(query["error"], "invalid_scope");
    assert!(query["error_description"].contains("iserv:groups"));
    assert_eq!(query["state"], "state-123");
    assert!(!query.contains_key("code"));
}

#[tokio::test]
async fn denied_consent_redirects_access_denied_with_state() {
    let provider = start(Layout::Auth).await;
    provider.set_fault(Fault::DenyConsent);

    let query = location_params(&authorize(&provider, &authorize_params(&provider)).await);

    assert_eq!(query["error"], "access_denied");
    assert!(!query["error_description"].is_empty());
    assert_eq!(query["state"], "state-123");
    assert!(!query.contains_key("code"));
}

// ---- token ----

#[tokio::test]
async fn client_secret_post_is_accepted_and_recorded() {
    let provider = start(Layout::Auth).await;
    let code = code_for(&provider).await;

    let response = token_post(&provider, &token_form(&code)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let requests = provider.token_requests();
    assert_eq!(requests[0].auth_method, "post");
    assert_eq!(requests[0].form["client_id"], "portal");
    assert_eq!(requests[0].form["code_verifier"], VERIFIER);
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_before_base64() {
    let mut cfg = ProviderConfig::new(Layout::Auth);
    cfg.client_id = "portal:school".to_owned();
    cfg.client_secret = "s3cr=t&+ü".to_owned();
    let provider = OidcProvider::start(cfg).await.unwrap();
    let mut params = authorize_params(&provider);
    params.insert("client_id", "portal:school".to_owned());
    let code = location_params(&authorize(&provider, &params).await)["code"].clone();
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = |id: &str, secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    let send = |authorization: String| {
        http()
            .post(provider.endpoints().token)
            .header("authorization", authorization)
            .form(&token_form(&code))
            .send()
    };

    let raw = send(basic("portal:school", "s3cr=t&+ü")).await.unwrap();
    let encoded = send(basic(&encode("portal:school"), &encode("s3cr=t&+ü")))
        .await
        .unwrap();

    oauth_error(raw, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert_eq!(encoded.status(), StatusCode::OK);
}

#[tokio::test]
async fn client_authentication_is_enforced_as_configured() {
    let basic_only = {
        let mut cfg = ProviderConfig::new(Layout::Auth);
        cfg.client_auth = ClientAuth::Basic;
        OidcProvider::start(cfg).await.unwrap()
    };
    let post_only = {
        let mut cfg = ProviderConfig::new(Layout::Auth);
        cfg.client_auth = ClientAuth::Post;
        OidcProvider::start(cfg).await.unwrap()
    };

    let post_to_basic_only = token_post(&basic_only, &token_form(&code_for(&basic_only).await)).await;
    let basic_to_post_only = token_basic(&post_only, &token_form(&code_for(&post_only).await)).await;

    let text = oauth_error(post_to_basic_only, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(text.contains("client_secret_basic"), "{text}");
    let text = oauth_error(basic_to_post_only, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(text.contains("client_secret_post"), "{text}");
}

#[tokio::test]
async fn missing_wrong_or_doubled_client_credentials_are_refused() {
    let provider = start(Layout::Auth).await;
    let code = code_for(&provider).await;
    let url = provider.endpoints().token;
    let mut with_id = token_form(&code);
    with_id.insert("client_id", "portal".to_owned());
    let mut with_secret = with_id.clone();
    with_secret.insert("client_secret", "portal-secret".to_owned());

    let none = http().post(&url).form(&with_id).send().await.unwrap();
    let wrong = http()
        .post(&url)
        .basic_auth("portal", Some("guess"))
        .form(&token_form(&code))
        .send()
        .await
        .unwrap();
    let both = http()
        .post(&url)
        .basic_auth("portal", Some("portal-secret"))
        .form(&with_secret)
        .send()
        .await
        .unwrap();

    assert!(none.headers()[WWW_AUTHENTICATE].to_str().unwrap().starts_with("Basic"));
    oauth_error(none, StatusCode::UNAUTHORIZED, "invalid_client").await;
    oauth_error(wrong, StatusCode::UNAUTHORIZED, "invalid_client").await;
    oauth_error(both, StatusCode::BAD_REQUEST, "invalid_request").await;
    let methods: Vec<String> = provider.token_requests().into_iter().map(|r| r.auth_method).collect();
    assert_eq!(methods, ["none", "basic", "basic"]);
    // None of that spent the code.
    assert_eq!(
        token_basic(&provider, &token_form(&code)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn malformed_token_requests_are_invalid_request() {
    let provider = start(Layout::Auth).await;
    let code = code_for(&provider).await;
    for name in ["grant_type", "code", "redirect_uri", "code_verifier"] {
        let mut form = token_form(&code);
        form.remove(name);

        let text = token_refused(&provider, &form, "invalid_request").await;

        assert!(text.contains(&format!("{name} is missing")), "{text}");
    }
    let mut form = token_form(&code);
    form.insert("code_verifier", "short".to_owned());
    token_refused(&provider, &form, "invalid_request").await;

    let json_body = http()
        .post(provider.endpoints().token)
        .basic_auth("portal", Some("portal-secret"))
        .json(&token_form(&code))
        .send()
        .await
        .unwrap();
    oauth_error(json_body, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn other_grant_types_are_refused() {
    let provider = start(Layout::Auth).await;
    let mut refresh = token_form("x");
    refresh.insert("grant_type", "refresh_token".to_owned());
    let mut device = token_form("x");
    device.insert("grant_type", "urn:ietf:params:oauth:grant-type:device_code".to_owned());

    token_refused(&provider, &refresh, "unauthorized_client").await;
    token_refused(&provider, &device, "unsupported_grant_type").await;
}

#[tokio::test]
async fn a_code_is_bound_to_its_redirect_uri_and_verifier() {
    let provider = start(Layout::Auth).await;
    let code = code_for(&provider).await;
    let mut other_redirect = token_form(&code);
    other_redirect.insert("redirect_uri", "http://127.0.0.1:5020/other".to_owned());
    let mut other_verifier = token_form(&code);
    other_verifier.insert("code_verifier", "x".repeat(43));
    let unknown = token_form("no-such-code");

    let redirect_text = token_refused(&provider, &other_redirect, "invalid_grant").await;
    let verifier_text = token_refused(&provider, &other_verifier, "invalid_grant").await;
    token_refused(&provider, &unknown, "invalid_grant").await;

    assert!(redirect_text.contains("redirect_uri"), "{redirect_text}");
    assert!(verifier_text.contains("code_verifier"), "{verifier_text}");
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let provider = start(Layout::Auth).await;
    let code = code_for(&provider).await;

    provider.expire_codes();

    let text = token_refused(&provider, &token_form(&code), "invalid_grant").await;
    assert!(text.contains("expired"), "{text}");
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_the_access_token_issued_for_it() {
    let provider = start(Layout::Auth).await;
    let code = code_for(&provider).await;
    let first = token_basic(&provider, &token_form(&code))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let access_token = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&provider, access_token).await.status(), StatusCode::OK);

    let again = token_basic(&provider, &token_form(&code)).await;

    oauth_error(again, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let revoked = userinfo(&provider, access_token).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    assert!(
        revoked.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
}

#[tokio::test]
async fn the_token_carries_the_user_who_signed_in_at_authorize_time() {
    let provider = start(Layout::Auth).await;
    provider.set_user(TestUser::student("anna"));
    let code = code_for(&provider).await;

    provider.set_user(TestUser::teacher("tom"));
    let tokens = token_basic(&provider, &token_form(&code))
        .await
        .json::<Value>()
        .await
        .unwrap();

    let claims = verify(&provider, tokens["id_token"].as_str().unwrap()).await.unwrap();
    assert_eq!(claims["preferred_username"], "anna");
}

// ---- faults ----

/// Signs in under `fault` and returns the ID token.
async fn id_token_under(provider: &OidcProvider, fault: Fault) -> String {
    let code = code_for(provider).await;
    provider.set_fault(fault);
    let tokens = sign_in_with_code(provider, &code).await;
    tokens["id_token"].as_str().unwrap().to_owned()
}

async fn sign_in_with_code(provider: &OidcProvider, code: &str) -> Value {
    let response = token_basic(provider, &token_form(code)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn each_id_token_fault_breaks_exactly_its_check() {
    use jsonwebtoken::errors::ErrorKind;
    let provider = start(Layout::Auth).await;
    let cases = [
        (Fault::BadSignature, ErrorKind::InvalidSignature),
        (Fault::WrongAudience, ErrorKind::InvalidAudience),
        (Fault::WrongIssuer, ErrorKind::InvalidIssuer),
        (Fault::Expired, ErrorKind::ExpiredSignature),
        (Fault::UnknownKid, ErrorKind::InvalidKeyFormat),
    ];
    for (fault, expected) in cases {
        let token = id_token_under(&provider, fault).await;

        let err = verify(&provider, &token).await.unwrap_err();

        assert_eq!(*err.kind(), expected, "{fault:?}");
    }
}

#[tokio::test]
async fn a_bad_signature_keeps_the_current_kid_and_an_unknown_kid_keeps_the_signature_valid() {
    let provider = start(Layout::Auth).await;
    let bad_signature = id_token_under(&provider, Fault::BadSignature).await;
    let unknown_kid = id_token_under(&provider, Fault::UnknownKid).await;

    assert_eq!(
        jsonwebtoken::decode_header(&bad_signature).unwrap().kid.unwrap(),
        provider.current_kid()
    );
    let kid = jsonwebtoken::decode_header(&unknown_kid).unwrap().kid.unwrap();
    assert_ne!(kid, provider.current_kid());
    // Same key, other label: relabelled with the real kid it verifies.
    let jwk_set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(get_json(&provider.endpoints().jwks).await).unwrap();
    let key = DecodingKey::from_jwk(&jwk_set.keys[0]).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["portal"]);
    jsonwebtoken::decode::<Value>(&unknown_kid, &key, &validation).unwrap();
}

#[tokio::test]
async fn a_wrong_nonce_is_signed_correctly_but_differs() {
    let provider = start(Layout::Auth).await;

    let token = id_token_under(&provider, Fault::WrongNonce).await;

    let claims = verify(&provider, &token).await.unwrap();
    assert_ne!(claims["nonce"], "nonce-456");
}

#[tokio::test]
async fn a_server_error_fails_the_token_endpoint_until_healed() {
    let provider = start(Layout::Auth).await;
    let code = code_for(&provider).await;
    provider.set_fault(Fault::ServerError);

    let failed = token_basic(&provider, &token_form(&code)).await;

    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    provider.set_fault(Fault::None);
    sign_in_with_code(&provider, &code).await;
}

#[tokio::test]
async fn an_unavailable_provider_answers_503_everywhere_until_it_is_back() {
    let provider = start(Layout::Auth).await;
    let endpoints = provider.endpoints();
    provider.set_available(false);

    for url in [
        format!("{}/.well-known/openid-configuration", endpoints.issuer),
        endpoints.jwks.clone(),
        endpoints.authorize.clone(),
        endpoints.userinfo.clone(),
    ] {
        assert_eq!(
            http().get(&url).send().await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{url}"
        );
    }
    let token = http().post(&endpoints.token).send().await.unwrap();
    assert_eq!(token.status(), StatusCode::SERVICE_UNAVAILABLE);

    provider.set_available(true);

    sign_in(&provider).await;
}

#[tokio::test]
async fn a_provider_can_start_on_a_listener_bound_earlier() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    let provider = OidcProvider::start_on(listener, ProviderConfig::new(Layout::Auth))
        .await
        .unwrap();

    assert_eq!(provider.issuer(), format!("http://{addr}"));
    sign_in(&provider).await;
}

// ---- userinfo ----

#[tokio::test]
async fn userinfo_answers_post_and_refuses_missing_or_unknown_tokens() {
    let provider = start(Layout::OauthV2).await;
    let tokens = sign_in(&provider).await;
    let url = provider.endpoints().userinfo;

    let post = http()
        .post(&url)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let missing = http().get(&url).send().await.unwrap();
    let unknown = userinfo(&provider, "not-a-token").await;

    assert_eq!(post.status(), StatusCode::OK);
    assert_eq!(post.json::<Value>().await.unwrap()["preferred_username"], "anna");
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()[WWW_AUTHENTICATE], "Bearer");
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(
        unknown.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );
    assert_eq!(provider.userinfo_requests(), 3);
}

// ---- claim shapes ----

/// The claims of an ID token issued for `user`.
async fn claims_of(user: TestUser) -> Value {
    let provider = start(Layout::Auth).await;
    provider.set_user(user);
    let tokens = sign_in(&provider).await;
    verify(&provider, tokens["id_token"].as_str().unwrap()).await.unwrap()
}

#[tokio::test]
async fn claim_shapes_come_through_as_iserv_sends_them() {
    let plain = claims_of(TestUser::student("anna").groups(&["5a", "lehrer"])).await;
    let object = claims_of(TestUser::student("anna").groups_as_object()).await;
    let list = claims_of(TestUser::student("anna").groups_as_list_of_objects()).await;
    let detailed = claims_of(TestUser::teacher("tom").roles_detailed().prefixed()).await;
    let custom = claims_of(
        TestUser::named("eve")
            .claim("email", json!("e@x.example"))
            .without("name"),
    )
    .await;

    assert_eq!(plain["groups"], json!(["5a", "lehrer"]));
    assert_eq!(object["groups"], json!({ "5a": { "act": "5a", "name": "Klasse 5a" } }));
    assert_eq!(list["groups"], json!([{ "act": "5a", "name": "Klasse 5a" }]));
    assert_eq!(detailed["iserv:groups"], json!(["lehrer"]));
    assert_eq!(detailed["iserv:roles"][0]["id"], "ROLE_TEACHER");
    assert_eq!(detailed["iserv:roles"][0]["displayName"], "Lehrer");
    assert!(detailed["iserv:roles"][0]["uuid"].is_string());
    assert_eq!(detailed["iserv:uuid"], detailed["sub"]);
    assert!(detailed.get("groups").is_none() && detailed.get("roles").is_none());
    assert_eq!(custom["email"], "e@x.example");
    assert!(custom.get("name").is_none());
    assert!(custom.get("groups").is_none());
}

#[tokio::test]
async fn with_registered_redirect_uris_any_other_is_refused_without_redirect() {
    let mut cfg = ProviderConfig::new(Layout::Auth);
    cfg.redirect_uris = vec![REDIRECT.to_owned()];
    let provider = OidcProvider::start(cfg).await.unwrap();
    let mut params = authorize_params(&provider);
    params.insert("redirect_uri", "http://evil.example/auth/callback".to_owned());

    let text = authorize_refused(&provider, &params).await;

    assert!(text.contains("not registered"), "{text}");
    sign_in(&provider).await;
}

#[tokio::test]
async fn revoked_access_tokens_are_invalid_at_userinfo() {
    let provider = start(Layout::Auth).await;
    let tokens = sign_in(&provider).await;

    provider.revoke_access_tokens();

    let response = userinfo(&provider, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// The forgeries a client must refuse are real: the HS256 token verifies with the client
/// secret (checked by jsonwebtoken), the unsigned one has `alg` `none` and no signature, and
/// discovery announces what the test asks for.
#[tokio::test]
async fn hs256_and_unsigned_id_tokens_are_what_they_claim_to_be() {
    let provider = OidcProvider::start(ProviderConfig {
        id_token_algs_supported: vec!["RS256".into(), "HS256".into(), "none".into()],
        ..ProviderConfig::new(Layout::Auth)
    })
    .await
    .unwrap();
    provider.set_user(TestUser::student("anna"));
    let discovery = get_json(&format!("{}/.well-known/openid-configuration", provider.issuer())).await;
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["RS256", "HS256", "none"])
    );

    provider.set_fault(Fault::Hs256);
    let tokens = sign_in(&provider).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["portal"]);
    validation.set_issuer(&[provider.issuer()]);
    let secret = DecodingKey::from_secret(provider.config().client_secret.as_bytes());
    let claims = jsonwebtoken::decode::<Value>(id_token, &secret, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["preferred_username"], "anna");
    let wrong = DecodingKey::from_secret(b"another secret");
    assert!(jsonwebtoken::decode::<Value>(id_token, &wrong, &validation).is_err());

    provider.set_fault(Fault::Unsigned);
    let tokens = sign_in(&provider).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    assert!(id_token.ends_with('.'), "{id_token}");
    let header = id_token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&B64URL.decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "none");
}
