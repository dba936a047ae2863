//! `/healthz` (the process answers) and `/readyz` (the store and the runtime answer too).

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use serde_json::json;

use crate::state::AppState;

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.ping().await.map_err(|e| e.to_string());
    let runtime = state.runtime.ping().await.map_err(|e| e.to_string());
    let ok = store.is_ok() && runtime.is_ok();
    let describe = |r: &Result<(), String>| match r {
        Ok(()) => json!({ "ok": true }),
        Err(e) => json!({ "ok": false, "error": e }),
    };
    let body = json!({
        "ready": ok,
        "store": describe(&store),
        "runtime": { "kind": state.runtime.kind(), "status": describe(&runtime) },
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
