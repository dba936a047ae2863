//! The CSRF check: one middleware on every sub-router with state-changing routes, so no
//! handler checks a token itself and a new route behind it cannot forget to.
//!
//! A request with a method that is not safe (POST, PUT, PATCH, DELETE) passes only with the
//! expected token — in `X-CSRF-Token` (the scripts) or as the `csrf_token` field of a form (every
//! form works without JavaScript) — and, if the browser sent an `Origin`, the portal's own.
//! Refusals are [`AppError::Csrf`] (403), rendered as a page or JSON like any other error.
//!
//! Tokens in a body: an urlencoded form is read within the sub-router's body limit and handed
//! on intact. Of a multipart upload only the first part is read — the upload forms put
//! `csrf_token` first — and the rest streams on, so the handler still applies its own limit to
//! the file and names it when it is too large. Tokens in the query are not accepted: URLs end
//! up in logs and `Referer` headers.

use axum::body::{Body, Bytes};
use axum::extract::{OptionalFromRequestParts as _, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use http::header::CONTENT_TYPE;
use http::request::Parts;

use crate::auth::{CurrentUser, check_csrf, cookie_value};
use crate::state::AppState;
use crate::web::error::AppError;

/// The header the scripts send the token in (`static/portal.js`).
const HEADER: &str = "x-csrf-token";
/// The form field the pages send it in.
const FIELD: &str = "csrf_token";

/// Whose token a request must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// The signed-in session's token. Every route behind it needs a session.
    Session,
    /// The sign-in form's double-submit token: there is no session yet, so the form carries a
    /// random value that must equal the sign-in cookie set together with the form.
    SignInCookie,
}

/// The middleware's state: what to expect, and how much of a form body it may read.
#[derive(Clone)]
pub(crate) struct Csrf {
    state: AppState,
    expect: Expect,
    body_limit: usize,
}

impl Csrf {
    /// `body_limit`: the sub-router's own body limit, the most of a body this check reads.
    pub(crate) fn new(state: &AppState, expect: Expect, body_limit: usize) -> Self {
        Csrf {
            state: state.clone(),
            expect,
            body_limit,
        }
    }

    /// The request, with its body intact, once its token and origin passed.
    async fn check(&self, req: Request) -> Result<Request, AppError> {
        let (mut parts, body) = req.into_parts();
        let expected = match self.expect {
            Expect::Session => match CurrentUser::from_request_parts(&mut parts, &self.state).await? {
                // The extractor caches the user, so the handler does not look it up again.
                Some(user) => user.session.csrf_token,
                // What every handler behind this check answers without a session.
                None => return Err(AppError::Unauthorized),
            },
            Expect::SignInCookie => {
                // Password sign-in switched off changes nothing; its handler refuses with the
                // message that says to use IServ, which a CSRF refusal would hide.
                if !self.state.config.local_login {
                    return Ok(Request::from_parts(parts, body));
                }
                cookie_value(&parts.headers, self.state.cookies.login_csrf)
                    .unwrap_or("")
                    .to_owned()
            }
        };
        let (submitted, body) = if parts.headers.contains_key(HEADER) {
            (None, body)
        } else {
            self.token_in_body(&parts, body).await?
        };
        check_csrf(
            &parts.headers,
            submitted.as_deref(),
            &expected,
            &self.state.public_origin,
        )?;
        Ok(Request::from_parts(parts, body))
    }

    /// The `csrf_token` field of a form body, and the body to hand on.
    async fn token_in_body(&self, parts: &Parts, body: Body) -> Result<(Option<String>, Body), AppError> {
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/x-www-form-urlencoded" => {
                let bytes = axum::body::to_bytes(body, self.body_limit)
                    .await
                    .map_err(|e| self.read_error(e))?;
                let token = url::form_urlencoded::parse(&bytes)
                    .find(|(k, _)| k == FIELD)
                    .map(|(_, v)| v.into_owned());
                Ok((token, Body::from(bytes)))
            }
            "multipart/form-data" => match multer::parse_boundary(content_type) {
                Ok(boundary) => self.token_in_first_part(boundary, body).await,
                Err(_) => Ok((None, body)),
            },
            _ => Ok((None, body)),
        }
    }

    /// Reads a multipart body up to the end of its first part; the token if that part is
    /// `csrf_token`, and a body that yields what was read followed by the rest.
    async fn token_in_first_part(&self, boundary: String, body: Body) -> Result<(Option<String>, Body), AppError> {
        let delimiter = format!("--{boundary}");
        let mut stream = body.into_data_stream();
        let mut prefix = Vec::new();
        while !has_two(&prefix, delimiter.as_bytes()) && prefix.len() <= self.body_limit {
            match stream.next().await {
                Some(Ok(chunk)) => prefix.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(self.read_error(e)),
                None => break,
            }
        }
        let prefix = Bytes::from(prefix);
        let token = first_field(prefix.clone(), boundary).await;
        let whole = futures_util::stream::once(async move { Ok::<_, axum::Error>(prefix) }).chain(stream);
        Ok((token, Body::from_stream(whole)))
    }

    fn read_error(&self, e: axum::Error) -> AppError {
        let too_large = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
            .any(|e| e.is::<http_body_util::LengthLimitError>());
        if too_large {
            AppError::TooLarge { limit: self.body_limit }
        } else {
            AppError::BadRequest(format!("the request body could not be read: {e}"))
        }
    }
}

/// Whether `needle` occurs twice (not overlapping) in `haystack`.
fn has_two(haystack: &[u8], needle: &[u8]) -> bool {
    let find = |from: usize| {
        haystack
            .get(from..)
            .and_then(|h| h.windows(needle.len()).position(|w| w == needle))
            .map(|i| from + i)
    };
    find(0).and_then(|first| find(first + needle.len())).is_some()
}

/// The value of the first part of a multipart body if it is the `csrf_token` field.
async fn first_field(prefix: Bytes, boundary: String) -> Option<String> {
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(prefix) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let field = multipart.next_field().await.ok()??;
    if field.name() != Some(FIELD) {
        return None;
    }
    field.text().await.ok()
}

/// Middleware: safe methods pass; everything else needs the token (see the module).
pub(crate) async fn require(State(csrf): State<Csrf>, req: Request, next: Next) -> Response {
    if req.method().is_safe() {
        return next.run(req).await;
    }
    match csrf.check(req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_first_part_ends_at_the_second_delimiter() {
        assert!(!has_two(b"--b\r\nx", b"--b"));
        assert!(has_two(b"--b\r\nx\r\n--b", b"--b"));
        assert!(!has_two(b"--b-", b"--b--"));
    }

    #[tokio::test]
    async fn the_token_is_read_from_the_first_part_only() {
        let body = |first: &str| {
            Bytes::from(format!(
                "--b\r\nContent-Disposition: form-data; name=\"{first}\"\r\n\r\ntok\r\n--b"
            ))
        };
        assert_eq!(
            first_field(body("csrf_token"), "b".into()).await.as_deref(),
            Some("tok")
        );
        assert_eq!(first_field(body("file"), "b".into()).await, None);
        // Cut off before the part ends: no token (the value might be incomplete).
        let cut = Bytes::from_static(b"--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nto");
        assert_eq!(first_field(cut, "b".into()).await, None);
    }
}
