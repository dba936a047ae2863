//! The token endpoint: client authentication, code redemption with PKCE, ID token issuance.
//!
//! Errors are RFC 6749 5.2 JSON. A redeemed code that comes back is refused and the access
//! token issued for it is revoked (RFC 6749 4.1.2 suggests it; real providers do it).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::keys::{KeyError, Signer};
use super::state::{ACCESS_TOKEN_SECS, Grant, ID_TOKEN_SECS, Inner, Shared, random_token, unix_now};
use super::{ClientAuth, Fault, TokenRequest};

/// Why a token request is refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum TokenError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("the provider failed on purpose (Fault::ServerError)")]
    Injected,
    #[error("could not sign the ID token: {0}")]
    Sign(#[from] KeyError),
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let (status, code, description) = match &self {
            TokenError::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d.clone()),
            TokenError::InvalidClient(d) => (StatusCode::UNAUTHORIZED, "invalid_client", d.clone()),
            TokenError::InvalidGrant(d) => (StatusCode::BAD_REQUEST, "invalid_grant", d.clone()),
            TokenError::UnauthorizedClient(d) => (StatusCode::BAD_REQUEST, "unauthorized_client", d.clone()),
            TokenError::UnsupportedGrantType(d) => (StatusCode::BAD_REQUEST, "unsupported_grant_type", d.clone()),
            TokenError::Injected | TokenError::Sign(_) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n").into_response();
            }
        };
        let mut response = (
            status,
            no_store(),
            Json(json!({ "error": code, "error_description": description })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"IServ\""),
            );
        }
        response
    }
}

pub(super) async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match redeem(&shared, &headers, &body) {
        Ok(answer) => (no_store(), Json(answer)).into_response(),
        Err(err) => {
            tracing::debug!(%err, "test OpenID provider refused a token request");
            err.into_response()
        }
    }
}

/// RFC 6749 5.1: token responses must not be cached.
fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")]
}

/// How the client authenticated, before checking the credentials.
enum Presented {
    Basic(Result<(String, String), String>),
    Post { id: String, secret: String },
    None,
}

fn redeem(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Value, TokenError> {
    let (form, duplicates) = parse_form(body);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| decode_basic(credentials.trim()));
    let form_secret = form.get("client_secret").cloned();
    let presented = match (basic, form_secret) {
        (Some(_), Some(_)) => {
            let mut inner = shared.lock();
            log(&mut inner, "basic", &form);
            return Err(TokenError::InvalidRequest(
                "use one client authentication method, not HTTP Basic and client_secret together".into(),
            ));
        }
        (Some(basic), None) => Presented::Basic(basic),
        (None, Some(secret)) => Presented::Post {
            id: form.get("client_id").cloned().unwrap_or_default(),
            secret,
        },
        (None, None) => Presented::None,
    };

    let mut inner = shared.lock();
    let method = match presented {
        Presented::Basic(_) => "basic",
        Presented::Post { .. } => "post",
        Presented::None => "none",
    };
    log(&mut inner, method, &form);
    if inner.fault == Fault::ServerError {
        return Err(TokenError::Injected);
    }
    if let Some(name) = duplicates.first() {
        return Err(TokenError::InvalidRequest(format!("{name} is given more than once")));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(TokenError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let client_id = authenticate(shared, presented, &form)?;

    let field = |name: &str| {
        form.get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| TokenError::InvalidRequest(format!("{name} is missing")))
    };
    match field("grant_type")?.as_str() {
        "authorization_code" => {}
        "refresh_token" | "client_credentials" | "password" => {
            return Err(TokenError::UnauthorizedClient(
                "this client may only use the authorization_code grant".into(),
            ));
        }
        other => {
            return Err(TokenError::UnsupportedGrantType(format!(
                "grant_type {other:?} is not supported"
            )));
        }
    }
    let code = field("code")?;
    let redirect_uri = field("redirect_uri")?;
    let verifier = field("code_verifier")?;
    if !is_pkce_verifier(&verifier) {
        return Err(TokenError::InvalidRequest(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)".into(),
        ));
    }

    let grant = check_grant(&mut inner, &code, &client_id, &redirect_uri, &verifier)?;
    let access_token = random_token(32);
    let id_token = id_token(shared, &inner, &grant, &client_id)?;
    inner.access_tokens.insert(access_token.clone(), grant.user.clone());
    if let Some(stored) = inner.codes.get_mut(&code) {
        stored.redeemed = Some(access_token.clone());
    }
    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECS,
        "id_token": id_token,
        "scope": grant.scope,
    }))
}

fn log(inner: &mut Inner, method: &str, form: &BTreeMap<String, String>) {
    inner.token_log.push(TokenRequest {
        auth_method: method.to_owned(),
        form: form.clone(),
    });
}

/// Checks the client's credentials against the registration; returns its id.
fn authenticate(shared: &Shared, presented: Presented, form: &BTreeMap<String, String>) -> Result<String, TokenError> {
    let cfg = &shared.cfg;
    let (id, secret) = match presented {
        Presented::None => {
            return Err(TokenError::InvalidClient(
                "client authentication is required (client_secret_basic or client_secret_post)".into(),
            ));
        }
        Presented::Basic(_) if cfg.client_auth == ClientAuth::Post => {
            return Err(TokenError::InvalidClient(
                "this client must authenticate with client_secret_post".into(),
            ));
        }
        Presented::Post { .. } if cfg.client_auth == ClientAuth::Basic => {
            return Err(TokenError::InvalidClient(
                "this client must authenticate with client_secret_basic".into(),
            ));
        }
        Presented::Basic(Err(why)) => return Err(TokenError::InvalidClient(why)),
        Presented::Basic(Ok((id, secret))) => {
            // A client_id form field next to Basic is allowed, but must name the same client.
            if form.get("client_id").is_some_and(|form_id| *form_id != id) {
                return Err(TokenError::InvalidClient(
                    "client_id in the form differs from the HTTP Basic user".into(),
                ));
            }
            (id, secret)
        }
        Presented::Post { id, secret } => (id, secret),
    };
    if id != cfg.client_id || secret != cfg.client_secret {
        return Err(TokenError::InvalidClient("unknown client or wrong secret".into()));
    }
    Ok(id)
}

/// Redeems `code` if every binding matches; a second redemption revokes the first's token.
fn check_grant(
    inner: &mut Inner,
    code: &str,
    client_id: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Grant, TokenError> {
    let Some(grant) = inner.codes.get(code).cloned() else {
        return Err(TokenError::InvalidGrant("the code is unknown".into()));
    };
    if let Some(token) = &grant.redeemed {
        inner.access_tokens.remove(token);
        return Err(TokenError::InvalidGrant(
            "the code was already used; the access token issued for it is revoked".into(),
        ));
    }
    if std::time::Instant::now() >= grant.expires_at {
        return Err(TokenError::InvalidGrant("the code has expired".into()));
    }
    if grant.client_id != client_id {
        return Err(TokenError::InvalidGrant("the code was issued to another client".into()));
    }
    if grant.redirect_uri != redirect_uri {
        return Err(TokenError::InvalidGrant(
            "redirect_uri differs from the one in the authorization request".into(),
        ));
    }
    if B64URL.encode(Sha256::digest(verifier.as_bytes())) != grant.code_challenge {
        return Err(TokenError::InvalidGrant(
            "code_verifier does not match the code_challenge".into(),
        ));
    }
    Ok(grant)
}

/// The signed ID token, with the current fault changing exactly one thing.
fn id_token(shared: &Shared, inner: &Inner, grant: &Grant, client_id: &str) -> Result<String, KeyError> {
    let now = unix_now();
    let mut claims = grant.user.claims.clone();
    let standard = [
        ("iss", json!(shared.issuer)),
        ("sub", json!(grant.user.sub)),
        ("aud", json!(client_id)),
        ("exp", json!(now + ID_TOKEN_SECS)),
        ("iat", json!(now)),
        ("nonce", json!(grant.nonce)),
        ("auth_time", json!(grant.auth_time)),
    ];
    for (key, value) in standard {
        claims.insert(key.to_owned(), value);
    }
    let mut signer = Signer::Current;
    match inner.fault {
        Fault::BadSignature => signer = Signer::Impostor,
        Fault::UnknownKid => signer = Signer::UnknownKid,
        Fault::WrongAudience => {
            claims.insert("aud".into(), json!("another-client"));
        }
        Fault::WrongIssuer => {
            claims.insert("iss".into(), json!("https://other-iserv.example"));
        }
        Fault::Expired => {
            claims.insert("exp".into(), json!(now.saturating_sub(600)));
        }
        Fault::WrongNonce => {
            claims.insert("nonce".into(), json!(random_token(16)));
        }
        Fault::Hs256 => return super::keys::sign_hs256(&Value::Object(claims), shared.cfg.client_secret.as_bytes()),
        Fault::Unsigned => return super::keys::unsigned(&Value::Object(claims)),
        Fault::None | Fault::DenyConsent | Fault::ServerError => {}
    }
    inner.keys.sign(&Value::Object(claims), signer)
}

/// Form fields, and the names given more than once.
fn parse_form(body: &[u8]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut form = BTreeMap::new();
    let mut duplicates = Vec::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        if form.insert(key.to_string(), value.into_owned()).is_some() {
            duplicates.push(key.into_owned());
        }
    }
    (form, duplicates)
}

/// `base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 2.3.1) → id and secret.
fn decode_basic(credentials: &str) -> Result<(String, String), String> {
    let decoded = B64
        .decode(credentials)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or("the HTTP Basic credentials are not base64 of UTF-8 text")?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or("the HTTP Basic credentials have no ':' between client id and secret")?;
    Ok((form_decode(id)?, form_decode(secret)?))
}

/// Undoes application/x-www-form-urlencoded; a raw `=` or `&` means the client did not encode.
fn form_decode(part: &str) -> Result<String, String> {
    if part.contains(['=', '&']) {
        return Err("the HTTP Basic client id and secret must be form-urlencoded (RFC 6749 2.3.1)".into());
    }
    Ok(url::form_urlencoded::parse(part.as_bytes())
        .next()
        .map(|(decoded, _)| decoded.into_owned())
        .unwrap_or_default())
}

fn is_pkce_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}
