//! Discovery (`/.well-known/openid-configuration`) and the JWKS.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use serde_json::json;

use super::state::Shared;

/// Claims every user may carry, whatever the scopes.
const BASE_CLAIMS: [&str; 10] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "name",
    "preferred_username",
    "email",
];

pub(super) async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.cfg.discovery {
        return (StatusCode::NOT_FOUND, "Not Found\n").into_response();
    }
    let endpoints = shared.endpoints();
    let scopes = &shared.cfg.scopes_supported;
    // IServ's own claims are named like the scopes that release them (plain or `iserv:`).
    let iserv_claims = ["groups", "roles", "uuid"]
        .into_iter()
        .flat_map(|claim| [claim.to_owned(), format!("iserv:{claim}")])
        .filter(|claim| scopes.contains(claim));
    let claims: Vec<String> = BASE_CLAIMS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(iserv_claims)
        .collect();
    Json(json!({
        "issuer": endpoints.issuer,
        "authorization_endpoint": endpoints.authorize,
        "token_endpoint": endpoints.token,
        "userinfo_endpoint": endpoints.userinfo,
        "jwks_uri": endpoints.jwks,
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": shared.cfg.id_token_algs_supported,
        "token_endpoint_auth_methods_supported": shared.cfg.client_auth.discovery_names(),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
    }))
    .into_response()
}

pub(super) async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.lock().keys.jwks()).into_response()
}
