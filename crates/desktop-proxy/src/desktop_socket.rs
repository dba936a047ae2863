//! The portal's own WebSocket to a desktop's VNC server, for reading its screen (teachers'
//! thumbnails and watching). The browser never touches this connection.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Version};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;

use crate::forward::basic_auth_header;
use crate::{Proxy, ProxyError, Target};

/// The upgraded connection: raw WebSocket bytes to and from the desktop. Wrap it in a
/// WebSocket implementation as the client side (no handshake left to do).
pub type DesktopSocket = TokioIo<hyper::upgrade::Upgraded>;

impl Proxy {
    /// Opens a WebSocket to `path` on `target` the way the relay does — HTTP/1.1, title-case
    /// header names (KasmVNC ≤ 1.3), the desktop's Basic credentials, TLS as the target says —
    /// and returns the upgraded byte stream. The subprotocol is `binary` (KasmVNC requires one
    /// to be offered); `Origin` is the desktop's own address, since no browser is involved.
    pub async fn open_websocket(&self, target: &Target, path: &str) -> Result<DesktopSocket, ProxyError> {
        let uri = format!("{}://{}{}", target.scheme, target.authority(), path);
        let origin = format!("{}://{}", target.scheme, target.authority());
        let mut req = Request::get(uri)
            .version(Version::HTTP_11)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, websocket_key()?)
            .header(header::SEC_WEBSOCKET_PROTOCOL, "binary")
            .header(header::ORIGIN, origin)
            .body(
                http_body_util::Empty::<Bytes>::new()
                    .map_err(|e| match e {})
                    .boxed_unsync(),
            )
            .map_err(|e| ProxyError::Request(e.to_string()))?;
        if let Some(auth) = basic_auth_header(target) {
            req.headers_mut().insert(header::AUTHORIZATION, auth);
        }
        let mut resp = self.send(target, req).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(ProxyError::Protocol(format!(
                "the desktop answered the WebSocket request with {}",
                resp.status()
            )));
        }
        let upgraded = tokio::time::timeout(self.config().response_timeout, hyper::upgrade::on(&mut resp))
            .await
            .map_err(|_| ProxyError::Timeout(self.config().response_timeout))?
            .map_err(|e| ProxyError::Protocol(format!("WebSocket upgrade: {e}")))?;
        Ok(TokioIo::new(upgraded))
    }
}

/// A fresh random `Sec-WebSocket-Key` (16 random bytes, base64), from the TLS provider's
/// random source so that no other one is needed.
fn websocket_key() -> Result<HeaderValue, ProxyError> {
    use base64::Engine as _;
    let mut nonce = [0u8; 16];
    crate::tls::provider()
        .secure_random
        .fill(&mut nonce)
        .map_err(|_| ProxyError::Tls("no random numbers for the WebSocket key".into()))?;
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(nonce))
        .map_err(|e| ProxyError::Request(e.to_string()))
}
