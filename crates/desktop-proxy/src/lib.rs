//! The desktop proxy: forwards HTTP and relays WebSockets to a resolved desktop.
//!
//! This crate knows nothing of the portal's state, SQL or Docker. It gets a [`Target`]
//! (address, scheme, credentials, owners) from the [`RouteTable`] and relays bytes, which
//! keeps it benchmarkable and fuzzable on its own.

mod counters;
mod desktop_socket;
mod error;
mod forward;
mod headers;
mod read_ahead;
mod relay;
#[cfg(test)]
mod relay_tests;
mod routes;
mod tls;
mod upgrade;

pub use counters::RelayCounters;
pub use desktop_socket::DesktopSocket;
pub use error::ProxyError;
pub use forward::{ForwardContext, MAX_UPSTREAM_HEAD, Proxy, ProxyConfig, ProxyResponse};
pub use relay::RelayStats;
pub use routes::{BasicAuth, RouteTable, Scheme, Target};
pub use tls::unverified_config as unverified_tls_config;
pub use upgrade::{UpgradeError, WebSocketRequest, classify_upgrade};

/// The header rewriting, public only for the fuzz targets (`crates/fuzz-targets`), which check
/// what reaches a desktop and a browser; the portal never calls these.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::headers::{DESKTOP_MAY_NOT_SEND, downstream_response_headers, upstream_request_headers};
}
