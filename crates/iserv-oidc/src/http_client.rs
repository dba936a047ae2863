//! The HTTP client the OpenID Connect library uses: the workspace's reqwest, with redirects
//! off (a provider answer must not send the portal to another host) and timeouts.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// A request to IServ failed before an HTTP answer arrived. The message names the URL's host
/// but never a query string (which could carry a code).
#[derive(Debug, thiserror::Error)]
#[error("request to {host} failed: {reason}")]
pub(crate) struct HttpError {
    host: String,
    reason: String,
}

/// Cheap to clone; one connection pool for discovery, tokens, userinfo and keys.
#[derive(Clone, Debug)]
pub(crate) struct HttpClient {
    inner: reqwest::Client,
}

/// Answers larger than this are refused: discovery, keys and tokens are a few KiB.
const MAX_BODY: usize = 1024 * 1024;

impl HttpClient {
    pub(crate) fn new(timeout: Duration) -> anyhow::Result<Self> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("iserv-remote-desktop/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { inner })
    }

    /// Sends `request` and reads the whole answer.
    pub(crate) async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let host = request.uri().host().unwrap_or("?").to_owned();
        let fail = |reason: String| HttpError {
            host: host.clone(),
            reason,
        };
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let mut builder = self.inner.request(parts.method, url).body(body);
        for (name, value) in &parts.headers {
            builder = builder.header(name, value);
        }
        let response = builder.send().await.map_err(|e| fail(describe(&e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(fail(format!("answer larger than {MAX_BODY} bytes")));
        }
        let bytes = response.bytes().await.map_err(|e| fail(describe(&e)))?;
        if bytes.len() > MAX_BODY {
            return Err(fail(format!("answer larger than {MAX_BODY} bytes")));
        }
        let mut out = http::Response::new(bytes.to_vec());
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

/// What went wrong, without the URL (reqwest's Display includes it, query and all).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    if e.is_connect() {
        return "could not connect".into();
    }
    let text = e.to_string();
    match e.url() {
        Some(url) => text.replace(url.as_str(), "<url>"),
        None => text,
    }
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
