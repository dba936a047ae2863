//! The authorize endpoint: validates like a strict provider, then auto-consents as the test user.
//!
//! A malformed request gets 400 with a text naming every problem and is never redirected (the
//! redirect URI cannot be trusted then, RFC 6749 4.1.2.1). A well-formed request ends in a 302
//! to the redirect URI with `code` and `state`, or with an `error` for an unknown scope or a
//! declined consent.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use url::Url;

use super::Fault;
use super::state::{CODE_LIFETIME, Grant, Shared, random_token, unix_now};

/// Length of a base64url SHA-256 digest without padding, i.e. of every S256 challenge.
const S256_CHALLENGE_LEN: usize = 43;

/// Why an authorization request is answered without a code.
#[derive(Debug, thiserror::Error)]
pub(super) enum AuthorizeError {
    /// Not redirectable: 400 with the list of problems.
    #[error("invalid authorization request: {}", .0.join("; "))]
    Malformed(Vec<String>),
    /// Redirected back with `error=…` (RFC 6749 4.1.2.1).
    #[error("{code}: {description}")]
    Redirected {
        /// Boxed: a `Url` is large and this error travels by value.
        redirect_uri: Box<Url>,
        state: String,
        code: &'static str,
        description: String,
    },
}

impl axum::response::IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            AuthorizeError::Malformed(_) => (StatusCode::BAD_REQUEST, format!("{self}\n")).into_response(),
            AuthorizeError::Redirected {
                mut redirect_uri,
                state,
                code,
                description,
            } => {
                redirect_uri
                    .query_pairs_mut()
                    .append_pair("error", code)
                    .append_pair("error_description", &description)
                    .append_pair("state", &state);
                found(&redirect_uri)
            }
        }
    }
}

pub(super) async fn authorize(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    match issue_code(&shared, query.as_deref().unwrap_or_default()) {
        Ok(location) => found(&location),
        Err(err) => {
            tracing::debug!(%err, "test OpenID provider refused an authorization request");
            err.into_response()
        }
    }
}

fn issue_code(shared: &Shared, query: &str) -> Result<Url, AuthorizeError> {
    let (params, duplicates) = parse_params(query);
    let mut inner = shared.lock();
    inner.authorize_log.push(params.clone());
    let valid = validate(shared, &params, duplicates)?;

    let unknown: Vec<String> = valid
        .scope
        .split_whitespace()
        .filter(|s| !shared.cfg.scopes_supported.iter().any(|known| known == s))
        .map(str::to_owned)
        .collect();
    if !unknown.is_empty() {
        return Err(valid.redirect_error(
            "invalid_scope",
            format!(
                "unknown scope {}; this server offers: {}",
                unknown.join(" "),
                shared.cfg.scopes_supported.join(" ")
            ),
        ));
    }
    if inner.fault == Fault::DenyConsent {
        return Err(valid.redirect_error("access_denied", "The user declined the request.".to_owned()));
    }

    let code = random_token(32);
    let grant = Grant {
        client_id: valid.client_id,
        redirect_uri: valid.redirect_uri.to_string(),
        nonce: valid.nonce,
        code_challenge: valid.code_challenge,
        scope: valid.scope,
        user: inner.user.clone(),
        auth_time: unix_now(),
        expires_at: std::time::Instant::now() + CODE_LIFETIME,
        redeemed: None,
    };
    inner.codes.insert(code.clone(), grant);
    let mut location = valid.redirect_uri;
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &valid.state);
    Ok(location)
}

/// The parameters of a well-formed request.
struct ValidRequest {
    client_id: String,
    redirect_uri: Url,
    state: String,
    nonce: String,
    code_challenge: String,
    scope: String,
}

impl ValidRequest {
    fn redirect_error(self, code: &'static str, description: String) -> AuthorizeError {
        AuthorizeError::Redirected {
            redirect_uri: Box::new(self.redirect_uri),
            state: self.state,
            code,
            description,
        }
    }
}

/// Query parameters, and the names given more than once (RFC 6749 3.1 forbids that).
fn parse_params(query: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut params = BTreeMap::new();
    let mut duplicates = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if params.insert(key.to_string(), value.into_owned()).is_some() {
            duplicates.push(key.into_owned());
        }
    }
    (params, duplicates)
}

fn validate(
    shared: &Shared,
    params: &BTreeMap<String, String>,
    duplicates: Vec<String>,
) -> Result<ValidRequest, AuthorizeError> {
    let mut problems: Vec<String> = duplicates
        .into_iter()
        .map(|name| format!("{name} is given more than once"))
        .collect();
    let mut required = |name: &str| match params.get(name).filter(|v| !v.is_empty()) {
        Some(value) => value.clone(),
        None => {
            problems.push(format!("{name} is missing"));
            String::new()
        }
    };
    let response_type = required("response_type");
    let client_id = required("client_id");
    let redirect_uri = required("redirect_uri");
    let state = required("state");
    let nonce = required("nonce");
    let code_challenge = required("code_challenge");
    let method = required("code_challenge_method");
    let scope = required("scope");

    if !response_type.is_empty() && response_type != "code" {
        problems.push(format!("response_type must be \"code\", not {response_type:?}"));
    }
    if !client_id.is_empty() && client_id != shared.cfg.client_id {
        problems.push(format!("client_id {client_id:?} is not a registered client"));
    }
    let redirect_url = Url::parse(&redirect_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    if !redirect_uri.is_empty() && redirect_url.is_none() {
        problems.push(format!("redirect_uri {redirect_uri:?} is not an absolute http(s) URL"));
    } else if redirect_url.is_some()
        && !shared.cfg.redirect_uris.is_empty()
        && !shared.cfg.redirect_uris.contains(&redirect_uri)
    {
        problems.push(format!(
            "redirect_uri {redirect_uri:?} is not registered for this client (registered: {})",
            shared.cfg.redirect_uris.join(", ")
        ));
    }
    if !method.is_empty() && method != "S256" {
        problems.push(format!("code_challenge_method must be \"S256\", not {method:?}"));
    }
    if !code_challenge.is_empty() && !is_s256_challenge(&code_challenge) {
        problems.push(format!(
            "code_challenge must be a base64url SHA-256 digest ({S256_CHALLENGE_LEN} characters)"
        ));
    }
    if !scope.is_empty() && !scope.split_whitespace().any(|s| s == "openid") {
        problems.push("scope must include openid".to_owned());
    }

    match redirect_url {
        Some(redirect_uri) if problems.is_empty() => Ok(ValidRequest {
            client_id,
            redirect_uri,
            state,
            nonce,
            code_challenge,
            scope,
        }),
        _ => Err(AuthorizeError::Malformed(problems)),
    }
}

fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == S256_CHALLENGE_LEN
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn found(location: &Url) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.as_str())]).into_response()
}
