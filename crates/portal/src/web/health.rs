//! `/healthz` (the process answers) and `/readyz` (the store and the runtime answer too).

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use serde::Serialize;

use crate::state::AppState;

/// `/readyz`'s body. Fields in alphabetical order: the order the `json!` it replaced had, kept
/// for monitoring that compares bodies.
#[derive(Serialize)]
struct Readiness {
    ready: bool,
    runtime: RuntimeReadiness,
    store: Check,
}

#[derive(Serialize)]
struct RuntimeReadiness {
    kind: &'static str,
    status: Check,
}

/// One dependency's answer; `error` only when it failed.
#[derive(Serialize)]
struct Check {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    ok: bool,
}

impl From<Result<(), String>> for Check {
    fn from(r: Result<(), String>) -> Self {
        Check {
            ok: r.is_ok(),
            error: r.err(),
        }
    }
}

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.ping().await.map_err(|e| e.to_string());
    let runtime = state.runtime.ping().await.map_err(|e| e.to_string());
    let ok = store.is_ok() && runtime.is_ok();
    let body = Readiness {
        ready: ok,
        runtime: RuntimeReadiness {
            kind: state.runtime.kind(),
            status: runtime.into(),
        },
        store: store.into(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
