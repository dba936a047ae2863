//! The userinfo endpoint (GET and POST, RFC 6750 bearer tokens in the header only).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde_json::{Value, json};

use super::state::Shared;

pub(super) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut inner = shared.lock();
    inner.userinfo_count += 1;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        // RFC 6750 3.1: a request without credentials gets the challenge but no error code.
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")]).into_response();
    };
    let Some(user) = inner.access_tokens.get(token) else {
        let challenge =
            r#"Bearer error="invalid_token", error_description="The access token is unknown, revoked or expired""#;
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)]).into_response();
    };
    let mut body = user.claims.clone();
    body.insert("sub".into(), json!(user.sub));
    Json(Value::Object(body)).into_response()
}
