//! Sockets and addresses: the HTTP server with its limits, and who the client is behind
//! trusted reverse proxies.

pub mod body_timeout;
pub mod client_addr;
pub mod desktop_origin;
pub mod keyed_slots;
pub mod rate_limit;
pub mod server;
