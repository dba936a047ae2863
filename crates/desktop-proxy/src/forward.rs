//! Forwards one browser request to a desktop, and hands upgraded connections to the relay.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use secrecy::ExposeSecret as _;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::headers::{downstream_response_headers, upstream_request_headers};
use crate::read_ahead::ReadAheadConnector;
use crate::relay::relay;
use crate::{ProxyError, RelayCounters, Target, WebSocketRequest, tls};

type BoxError = Box<dyn StdError + Send + Sync>;
pub(crate) type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;
type UpstreamClient = Client<HttpsConnector<ReadAheadConnector>, UpstreamBody>;

/// The response the portal returns to the browser.
pub type ProxyResponse = Response<UnsyncBoxBody<Bytes, BoxError>>;

/// The largest response head accepted from a desktop (hyper's smallest read buffer, and the
/// seed's limit): a bigger one is refused with 502 rather than buffered.
pub const MAX_UPSTREAM_HEAD: usize = 8 * 1024;

/// Limits and timeouts for talking to desktops.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// TCP (and TLS) connect to the desktop.
    pub connect_timeout: Duration,
    /// From sending the request until the desktop's response head has arrived.
    pub response_timeout: Duration,
    /// A WebSocket on which no byte moved either way for this long is closed.
    pub idle_timeout: Duration,
    /// First read size per relay direction; it doubles while reads fill it (up to 64 KiB) and
    /// drops back after a quiet spell (`relay::SHRINK_AFTER`). Idle relays hold no buffer at all.
    pub relay_buffer_size: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            relay_buffer_size: 8 * 1024,
        }
    }
}

/// What the portal knows about the browser's request that the desktop should be told.
#[derive(Debug, Clone)]
pub struct ForwardContext {
    pub client_addr: SocketAddr,
    /// The browser reached the portal over https.
    pub https: bool,
    /// The `Host` the browser used, for `X-Forwarded-Host`.
    pub host: Option<HeaderValue>,
    /// Path and query on the desktop, prefix already stripped; starts with `/`.
    pub path_and_query: String,
    /// Set when the request is a validated WebSocket upgrade.
    pub websocket: Option<WebSocketRequest>,
    /// Ends the WebSocket relay when cancelled (its session ended, or its user lost access):
    /// the proxy knows nothing of sessions, only that this relay must close.
    pub stop: Option<CancellationToken>,
    /// Kept by the WebSocket relay until it closes: the portal counts a user's open
    /// WebSockets with it.
    pub hold: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

/// The proxy: HTTP/1.1 clients for verified and unverified TLS, plus limits.
#[derive(Clone)]
pub struct Proxy {
    verified: UpstreamClient,
    unverified: UpstreamClient,
    config: ProxyConfig,
    counters: Arc<RelayCounters>,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Result<Self, ProxyError> {
        let verified = HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(tls::provider())
            .map_err(|e| ProxyError::Tls(format!("loading the system's root certificates: {e}")))?;
        let unverified = HttpsConnectorBuilder::new().with_tls_config(tls::unverified_config()?);
        Ok(Self {
            verified: client(
                verified
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(connector(&config)),
                &config,
            ),
            unverified: client(
                unverified
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(connector(&config)),
                &config,
            ),
            config,
            counters: Arc::default(),
        })
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Open relays and bytes relayed, live, for metrics.
    pub fn relay_counters(&self) -> &Arc<RelayCounters> {
        &self.counters
    }

    /// Sends `req` to `target`. For a WebSocket upgrade that the desktop accepts, returns the
    /// 101 and relays bytes in the background once the browser's side is upgraded too.
    pub async fn forward<B>(
        &self,
        target: &Target,
        mut req: Request<B>,
        ctx: ForwardContext,
    ) -> Result<ProxyResponse, ProxyError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let websocket = ctx.websocket.is_some();
        let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let uri: Uri = format!("{}://{}{}", target.scheme, target.authority(), ctx.path_and_query)
            .parse()
            .map_err(|e| ProxyError::Request(format!("upstream URI: {e}")))?;
        let auth = basic_auth_header(target);
        upstream_request_headers(&mut parts.headers, &ctx, auth.as_ref(), websocket);
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        let upstream_req = Request::from_parts(parts, body.map_err(Into::into).boxed_unsync());

        let mut resp = self.send(target, upstream_req).await?;

        let upgraded = websocket && resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        downstream_response_headers(resp.headers_mut(), upgraded);
        if let (true, Some(client_upgrade)) = (upgraded, client_upgrade) {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            let (buffer, idle) = (self.config.relay_buffer_size, self.config.idle_timeout);
            let desktop = target.desktop_id.clone();
            let counters = self.counters.clone();
            let stop = ctx.stop.clone().unwrap_or_default();
            let hold = ctx.hold.clone();
            tokio::spawn(async move {
                let _hold = hold;
                let (client_io, upstream_io) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok(both) => both,
                    Err(e) => {
                        warn!(%desktop, error = %e, "WebSocket upgrade did not complete");
                        return;
                    }
                };
                let _open = counters.opened();
                let relayed = relay(
                    TokioIo::new(client_io),
                    TokioIo::new(upstream_io),
                    buffer,
                    idle,
                    counters.clone(),
                );
                // Dropping the relay closes both sockets.
                tokio::select! {
                    result = relayed => match result {
                        Ok(stats) => debug!(%desktop, ?stats, "WebSocket closed"),
                        Err(e) => debug!(%desktop, error = %e, "WebSocket ended with an error"),
                    },
                    () = stop.cancelled() => debug!(%desktop, "WebSocket closed: its session ended or lost access"),
                }
            });
            let (parts, _) = resp.into_parts();
            return Ok(Response::from_parts(
                parts,
                http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync(),
            ));
        }
        Ok(resp.map(|b| b.map_err(Into::into).boxed_unsync()))
    }
}

impl Proxy {
    /// Sends one request to `target` over the client its TLS setting asks for, and waits
    /// for the response head within the response timeout.
    pub(crate) async fn send(
        &self,
        target: &Target,
        req: Request<UpstreamBody>,
    ) -> Result<Response<hyper::body::Incoming>, ProxyError> {
        let client = if target.verify_tls {
            &self.verified
        } else {
            &self.unverified
        };
        tokio::time::timeout(self.config.response_timeout, client.request(req))
            .await
            .map_err(|_| ProxyError::Timeout(self.config.response_timeout))?
            .map_err(|e| classify(e, target))
    }

    /// `GET /` on the desktop with its credentials; the status tells whether its web server
    /// is up (Kasm answers 200, or 401 while its auth is not ready). Used to wait for a start.
    pub async fn probe(&self, target: &Target) -> Result<StatusCode, ProxyError> {
        let req = Request::get("/")
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| ProxyError::Request(e.to_string()))?;
        let ctx = ForwardContext {
            stop: None,
            hold: None,
            client_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            https: false,
            host: None,
            path_and_query: "/".into(),
            websocket: None,
        };
        let resp = self.forward(target, req, ctx).await?;
        Ok(resp.status())
    }
}

/// `Authorization: Basic …` with the desktop's own credentials, if it has any.
pub(crate) fn basic_auth_header(target: &Target) -> Option<HeaderValue> {
    target.basic_auth.as_ref().and_then(|a| {
        let raw = format!("{}:{}", a.username, a.password.expose_secret());
        HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
        .ok()
    })
}

fn connector(config: &ProxyConfig) -> ReadAheadConnector {
    let mut http = HttpConnector::new();
    // RFB input events are 6–8 bytes; Nagle would hold them back.
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout));
    // The https connector decides the scheme.
    http.enforce_http(false);
    ReadAheadConnector::new(http)
}

fn client(connector: HttpsConnector<ReadAheadConnector>, _config: &ProxyConfig) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        // KasmVNC ≤ 1.3 matches `Host: `, `Connection: ` and `Authorization: Basic `
        // case-sensitively; hyper would otherwise write lowercase names.
        .http1_title_case_headers(true)
        .http1_max_buf_size(MAX_UPSTREAM_HEAD)
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

fn classify(err: hyper_util::client::legacy::Error, target: &Target) -> ProxyError {
    if err.is_connect() {
        return ProxyError::Connect {
            addr: target.authority(),
            source: Box::new(err),
        };
    }
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse_too_large() {
                return ProxyError::HeadTooLarge {
                    limit: MAX_UPSTREAM_HEAD,
                };
            }
            return ProxyError::Protocol(h.to_string());
        }
        source = e.source();
    }
    ProxyError::Protocol(err.to_string())
}
