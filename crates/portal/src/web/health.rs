//! `/healthz` (the process answers) and `/readyz` (the store and the runtime answer too).

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use serde::Serialize;

use crate::auth::CurrentUser;
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
            // An empty error is one withheld from this caller.
            error: r.err().filter(|e| !e.is_empty()),
        }
    }
}

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `/readyz`: 200 or 503 with which dependency failed. Why it failed (addresses, driver
/// messages) goes to the log, and into the body only for a signed-in administrator.
pub(crate) async fn readyz(State(state): State<AppState>, user: Option<CurrentUser>) -> impl IntoResponse {
    let store = state.store.ping().await.map_err(|e| e.to_string());
    let runtime = state.runtime.ping().await.map_err(|e| e.to_string());
    let ok = store.is_ok() && runtime.is_ok();
    for (what, result) in [("store", &store), ("runtime", &runtime)] {
        if let Err(e) = result {
            tracing::warn!(dependency = what, error = %e, "not ready");
        }
    }
    let admin = user.is_some_and(|u| u.is_admin());
    let (store, runtime) = if admin {
        (store, runtime)
    } else {
        (store.map_err(|_| String::new()), runtime.map_err(|_| String::new()))
    };
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
