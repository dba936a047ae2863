//! The RFB handshake: version, security (None or VNC Authentication), initialisation, and
//! the pixel format and encodings this client understands.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::RfbError;
use crate::auth::vnc_response;
use crate::wire::Wire;

/// Bounds on what a desktop may make the client do.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Widest and highest screen accepted (RFB allows 65535).
    pub max_width: u16,
    pub max_height: u16,
    /// Most pixels in the framebuffer (3 bytes each in memory).
    pub max_pixels: u32,
    /// Each read inside a message, and each write.
    pub read_timeout: Duration,
    /// A whole message once its first byte arrived (and the whole handshake): a server
    /// that trickles a byte every few seconds is cut off too.
    pub message_timeout: Duration,
    /// Longest clipboard text skipped; a longer one ends the session.
    pub max_cut_text: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_width: 8192,
            max_height: 8192,
            // 4096 × 2560: 31 MiB of RGB.
            max_pixels: 4096 * 2560,
            read_timeout: Duration::from_secs(10),
            message_timeout: Duration::from_secs(30),
            max_cut_text: 1024 * 1024,
        }
    }
}

impl Limits {
    /// Whether a screen of this size may be held in memory.
    pub(crate) fn check(&self, width: u16, height: u16) -> Result<(), RfbError> {
        let too_large = RfbError::TooLarge {
            width: width.into(),
            height: height.into(),
        };
        if width > self.max_width || height > self.max_height || u32::from(width) * u32::from(height) > self.max_pixels
        {
            return Err(too_large);
        }
        Ok(())
    }
}

/// Longest desktop name read (and dropped); a longer one is a broken server.
const MAX_NAME: u32 = 64 * 1024;
/// Longest reason text a server may give for refusing; skipped, never shown.
const MAX_REASON: u32 = 64 * 1024;

/// Encodings the client decodes, in order of preference: CopyRect, Raw, and the DesktopSize
/// pseudo-encoding (the screen changed size).
pub(crate) const ENCODINGS: [i32; 3] = [1, 0, -223];

/// What the server said about its screen.
pub(crate) struct ServerInit {
    pub width: u16,
    pub height: u16,
}

/// Runs the handshake up to and including SetPixelFormat and SetEncodings.
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    password: Option<&[u8]>,
    limits: &Limits,
) -> Result<ServerInit, RfbError> {
    let mut version = [0u8; 12];
    wire.exact(&mut version).await?;
    let minor = parse_version(&version)?;
    wire.send(format!("RFB 003.{minor:03}\n").as_bytes()).await?;

    let security = if minor >= 7 {
        let n = wire.u8().await?;
        if n == 0 {
            skip_reason(wire).await?;
            return Err(RfbError::Refused);
        }
        let mut offered = [0u8; 255];
        let offered = &mut offered[..usize::from(n)];
        wire.exact(offered).await?;
        let chosen = if offered.contains(&1) {
            1
        } else if offered.contains(&2) {
            2
        } else {
            return Err(RfbError::NoSecurityType);
        };
        wire.send(&[chosen]).await?;
        chosen
    } else {
        match wire.u32().await? {
            0 => {
                skip_reason(wire).await?;
                return Err(RfbError::Refused);
            }
            t @ (1 | 2) => t as u8,
            _ => return Err(RfbError::NoSecurityType),
        }
    };
    if security == 2 {
        let password = password.ok_or(RfbError::PasswordNeeded)?;
        let mut challenge = [0u8; 16];
        wire.exact(&mut challenge).await?;
        wire.send(&vnc_response(password, &challenge)).await?;
    }
    // RFB 3.8 reports the result for every type; 3.3 and 3.7 only after authentication.
    if (minor >= 8 || security == 2) && wire.u32().await? != 0 {
        if minor >= 8 {
            skip_reason(wire).await?;
        }
        return Err(RfbError::AuthFailed);
    }

    // Shared: the student's own viewer stays connected while the portal looks.
    wire.send(&[1]).await?;
    let width = wire.u16().await?;
    let height = wire.u16().await?;
    let mut server_format = [0u8; 16];
    wire.exact(&mut server_format).await?;
    let name_len = wire.u32().await?;
    if name_len > MAX_NAME {
        return Err(RfbError::Protocol("desktop name too long"));
    }
    wire.skip(name_len.into()).await?;
    limits.check(width, height)?;

    wire.send(&set_pixel_format()).await?;
    wire.send(&set_encodings()).await?;
    Ok(ServerInit { width, height })
}

/// The minor version to answer with: 8 for 3.8 and later (and Apple's 3.889), 7, or 3 for
/// everything older (3.3, and the 3.4/3.6 some servers announce, as the RFC says).
fn parse_version(v: &[u8; 12]) -> Result<u16, RfbError> {
    let digits = |s: &[u8]| -> Option<u16> {
        s.iter().try_fold(0u16, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u16::from(c - b'0'))
        })
    };
    if &v[..4] != b"RFB " || v[7] != b'.' || v[11] != b'\n' {
        return Err(RfbError::NotRfb);
    }
    let major = digits(&v[4..7]).ok_or(RfbError::NotRfb)?;
    let minor = digits(&v[8..11]).ok_or(RfbError::NotRfb)?;
    match (major, minor) {
        (3, m) if m >= 8 => Ok(8),
        (3, 7) => Ok(7),
        (3, _) => Ok(3),
        (m, _) if m > 3 => Ok(8),
        _ => Err(RfbError::NotRfb),
    }
}

async fn skip_reason<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<S>) -> Result<(), RfbError> {
    let len = wire.u32().await?;
    if len > MAX_REASON {
        return Err(RfbError::Protocol("reason text too long"));
    }
    wire.skip(len.into()).await
}

/// SetPixelFormat: 32 bits per pixel, depth 24, little-endian true colour, 8 bits per
/// channel with red at bit 16 — so each pixel arrives as blue, green, red, unused.
fn set_pixel_format() -> [u8; 20] {
    [
        0, 0, 0, 0, // message type, padding
        32, 24, 0, 1, // bits per pixel, depth, big-endian, true colour
        0, 255, 0, 255, 0, 255, // red, green, blue maximum
        16, 8, 0, // red, green, blue shift
        0, 0, 0, // padding
    ]
}

fn set_encodings() -> Vec<u8> {
    let mut msg = vec![2, 0];
    msg.extend_from_slice(&(ENCODINGS.len() as u16).to_be_bytes());
    for e in ENCODINGS {
        msg.extend_from_slice(&e.to_be_bytes());
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_answered_with_the_best_common_one() {
        let v = |s: &str| parse_version(s.as_bytes().try_into().expect("12 bytes"));
        assert_eq!(v("RFB 003.008\n").expect("a version"), 8);
        assert_eq!(v("RFB 003.889\n").expect("a version"), 8);
        assert_eq!(v("RFB 003.007\n").expect("a version"), 7);
        assert_eq!(v("RFB 003.003\n").expect("a version"), 3);
        assert_eq!(v("RFB 003.005\n").expect("a version"), 3);
        assert!(v("HTTP/1.1 200").is_err());
        assert!(v("RFB 00x.008\n").is_err());
        assert!(v("RFB 002.008\n").is_err());
    }
}
