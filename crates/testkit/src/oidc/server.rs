//! Routes and the accept loop that owns every connection.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::state::Shared;
use super::{authorize, discovery, token, userinfo};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let paths = shared.cfg.layout.paths();
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery::discovery))
        .route(paths.jwks, get(discovery::jwks))
        .route(paths.authorize, get(authorize::authorize))
        .route(paths.token, axum::routing::post(token::token))
        .route(paths.userinfo, get(userinfo::userinfo).post(userinfo::userinfo))
        .layer(middleware::from_fn_with_state(shared.clone(), availability))
        .with_state(shared)
}

/// While "down", every request gets 503 like IServ behind its maintenance page.
async fn availability(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if !shared.lock().available {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "IServ is being updated; try again later.\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// Accepts until aborted; the connections live in a JoinSet so aborting closes them too.
pub(super) async fn serve(listener: TcpListener, app: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let service = TowerToHyperService::new(app.clone());
                    connections.spawn(async move {
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(err) = conn.await {
                            tracing::debug!(%err, "test OpenID provider connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%err, "test OpenID provider could not accept");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so a long test does not accumulate them.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
