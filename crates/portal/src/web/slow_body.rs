//! Request bodies that arrive too slowly are answered with 408 (see
//! [`crate::net::body_timeout`]), whatever the handler made of the broken body. The answer is
//! plain text, since it may be on a desktop's origin where no portal page is ever served.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http::header::CONNECTION;
use http::{HeaderValue, StatusCode};

use crate::i18n::Lang;
use crate::net::body_timeout::TimedBody;

/// Middleware: every request body gets the read timeout `idle`.
pub(crate) async fn limit(State(idle): State<Duration>, req: Request, next: Next) -> Response {
    let lang = Lang::from_headers(req.headers());
    let tripped = Arc::new(AtomicBool::new(false));
    let flag = tripped.clone();
    let req = req.map(|body| Body::new(TimedBody::new(body, idle, flag)));
    let resp = next.run(req).await;
    if !tripped.load(Ordering::Relaxed) {
        return resp;
    }
    tracing::info!(seconds = idle.as_secs(), "request body too slow; answered 408");
    let mut resp = (StatusCode::REQUEST_TIMEOUT, lang.t("err_body_timeout").to_owned()).into_response();
    // The rest of the body is not read: the connection cannot carry another request.
    resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}
