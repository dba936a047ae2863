//! The test OpenID provider behaves like a strict IServ: checked over real HTTP with reqwest, ID
//! tokens verified with jsonwebtoken (an independent JWT implementation).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use testkit::oidc::{Layout, OidcProvider, ProviderConfig, TestUser};

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

/// Verifies `id_token` against the provider's JWKS; returns the claims.
async fn verify(provider: &OidcProvider, id_token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(id_token)?;
    let jwks: jsonwebtoken::jwk::JwkSet = http()
        .get(provider.endpoints().jwks)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

    let info: Value = http()
        .get(provider.endpoints().userinfo)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], json!(tom.sub));
    assert_eq!(info["groups"], json!(["lehrer"]));
    assert_eq!(info["email"], "tom@school.example");
    assert_eq!(provider.userinfo_requests(), 1);
    assert_eq!(provider.authorize_requests().len(), 1);
    assert_eq!(provider.token_requests()[0].auth_method, "basic");
}
