//! What can go wrong when reading a desktop's screen.

use std::time::Duration;

/// Why an RFB session failed or ended. Texts from the server are never kept: a hostile
/// desktop would otherwise write into the portal's logs.
#[derive(Debug, thiserror::Error)]
pub enum RfbError {
    #[error("reading from or writing to the desktop: {0}")]
    Io(#[from] std::io::Error),
    #[error("the desktop sent nothing for {0:?} in the middle of a message")]
    Timeout(Duration),
    #[error("the desktop does not speak RFB 3.x")]
    NotRfb,
    #[error("the desktop refused the connection")]
    Refused,
    #[error("the desktop offers no security type this client supports (None, VNC Authentication)")]
    NoSecurityType,
    #[error("the desktop asks for a VNC password and none is configured")]
    PasswordNeeded,
    #[error("the desktop refused the credentials")]
    AuthFailed,
    #[error("the desktop's screen of {width}×{height} exceeds the limits")]
    TooLarge { width: u32, height: u32 },
    #[error("the desktop broke the protocol: {0}")]
    Protocol(&'static str),
}
