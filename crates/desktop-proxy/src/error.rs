//! Why a forward failed, in terms the portal can turn into a status and a message.

use std::time::Duration;

/// One error type for the proxy; the portal maps each kind to a status and a localised text.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("could not connect to the desktop at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the desktop did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the desktop's handshake response exceeds {limit} bytes")]
    HeadTooLarge { limit: usize },
    #[error("the desktop answered with an invalid response: {0}")]
    Protocol(String),
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    #[error("invalid upstream request: {0}")]
    Request(String),
}

impl ProxyError {
    /// The HTTP status the client should see.
    pub fn status(&self) -> http::StatusCode {
        match self {
            ProxyError::Timeout(_) => http::StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Request(_) => http::StatusCode::BAD_REQUEST,
            _ => http::StatusCode::BAD_GATEWAY,
        }
    }
}
