//! Recognises WebSocket upgrade requests and rejects malformed ones before any upstream work.

use base64::Engine as _;
use http::header::{CONNECTION, HeaderMap, ORIGIN, UPGRADE};
use http::{Method, Version};

/// A well-formed WebSocket upgrade request (RFC 6455 §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketRequest {
    /// The `Origin` (or legacy `Sec-WebSocket-Origin`) the browser sent.
    pub origin: String,
    /// Subprotocols offered, in the client's order.
    pub protocols: Vec<String>,
}

/// Why an upgrade request was refused. Each maps to 400 with a message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    #[error("WebSocket upgrades must use GET over HTTP/1.1")]
    MethodOrVersion,
    #[error("only the 'websocket' upgrade is supported")]
    NotWebSocket,
    #[error("the Connection header must contain 'Upgrade'")]
    MissingConnectionUpgrade,
    #[error("Sec-WebSocket-Key is missing or not 16 bytes of base64")]
    BadKey,
    #[error("Sec-WebSocket-Version must be 13")]
    BadVersion,
    #[error("the Origin header is missing")]
    MissingOrigin,
    #[error("the Origin header is repeated")]
    RepeatedOrigin,
}

const SEC_WEBSOCKET_KEY: &str = "sec-websocket-key";
const SEC_WEBSOCKET_VERSION: &str = "sec-websocket-version";
const SEC_WEBSOCKET_PROTOCOL: &str = "sec-websocket-protocol";
const SEC_WEBSOCKET_ORIGIN: &str = "sec-websocket-origin";

/// `Ok(None)` for an ordinary request, `Ok(Some(..))` for a valid WebSocket upgrade, and an
/// error for a request that asks for an upgrade but is malformed.
pub fn classify_upgrade(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Result<Option<WebSocketRequest>, UpgradeError> {
    let Some(upgrade) = headers.get(UPGRADE) else {
        return Ok(None);
    };
    if method != Method::GET || version != Version::HTTP_11 {
        return Err(UpgradeError::MethodOrVersion);
    }
    if !upgrade.as_bytes().eq_ignore_ascii_case(b"websocket") {
        return Err(UpgradeError::NotWebSocket);
    }
    let connection_has_upgrade = headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
            .unwrap_or(false)
    });
    if !connection_has_upgrade {
        return Err(UpgradeError::MissingConnectionUpgrade);
    }
    // Repeated keys or versions are ambiguous: the desktop might read another one than we did.
    let key_ok = single(headers, SEC_WEBSOCKET_KEY)
        .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k.as_bytes()).ok())
        .is_some_and(|k| k.len() == 16);
    if !key_ok {
        return Err(UpgradeError::BadKey);
    }
    if single(headers, SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err(UpgradeError::BadVersion);
    }
    // The Origin is what the portal checks; with two, the desktop might act on the other one.
    let origin_name = if headers.contains_key(ORIGIN) {
        ORIGIN.as_str()
    } else {
        SEC_WEBSOCKET_ORIGIN
    };
    if headers.get_all(origin_name).iter().nth(1).is_some() {
        return Err(UpgradeError::RepeatedOrigin);
    }
    let origin = single(headers, origin_name)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned)
        .ok_or(UpgradeError::MissingOrigin)?;
    let protocols = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    Ok(Some(WebSocketRequest { origin, protocols }))
}

/// The header's value if it occurs exactly once.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a http::HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn valid() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        h.insert(SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        h.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        h.insert(ORIGIN, HeaderValue::from_static("http://portal.test"));
        h.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("binary, base64"));
        h
    }

    #[test]
    fn plain_request_is_not_an_upgrade() {
        assert_eq!(
            classify_upgrade(&Method::GET, Version::HTTP_11, &HeaderMap::new()),
            Ok(None)
        );
    }

    #[test]
    fn valid_upgrade_keeps_origin_and_protocol_order() {
        let ws = classify_upgrade(&Method::GET, Version::HTTP_11, &valid())
            .unwrap()
            .unwrap();
        assert_eq!(ws.origin, "http://portal.test");
        assert_eq!(ws.protocols, ["binary", "base64"]);
    }

    #[test]
    fn malformed_upgrades_are_refused_with_the_reason() {
        type Mutation = fn(&mut HeaderMap);
        let cases: Vec<(Mutation, UpgradeError)> = vec![
            (
                |h| {
                    h.insert(UPGRADE, HeaderValue::from_static("h2c"));
                },
                UpgradeError::NotWebSocket,
            ),
            (
                |h| {
                    h.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
                },
                UpgradeError::MissingConnectionUpgrade,
            ),
            (
                |h| {
                    h.remove(SEC_WEBSOCKET_KEY);
                },
                UpgradeError::BadKey,
            ),
            (
                |h| {
                    h.insert(SEC_WEBSOCKET_KEY, HeaderValue::from_static("c2hvcnQ="));
                },
                UpgradeError::BadKey,
            ),
            (
                |h| {
                    h.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
                },
                UpgradeError::BadVersion,
            ),
            (
                |h| {
                    h.append(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
                },
                UpgradeError::BadVersion,
            ),
            (
                |h| {
                    h.append(SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
                },
                UpgradeError::BadKey,
            ),
            (
                |h| {
                    h.remove(ORIGIN);
                },
                UpgradeError::MissingOrigin,
            ),
            (
                |h| {
                    h.append(ORIGIN, HeaderValue::from_static("https://evil.example"));
                },
                UpgradeError::RepeatedOrigin,
            ),
            (
                |h| {
                    h.remove(ORIGIN);
                    h.append(SEC_WEBSOCKET_ORIGIN, HeaderValue::from_static("http://portal.test"));
                    h.append(SEC_WEBSOCKET_ORIGIN, HeaderValue::from_static("https://evil.example"));
                },
                UpgradeError::RepeatedOrigin,
            ),
        ];
        for (mutate, expected) in cases {
            let mut h = valid();
            mutate(&mut h);
            assert_eq!(classify_upgrade(&Method::GET, Version::HTTP_11, &h), Err(expected));
        }
        assert_eq!(
            classify_upgrade(&Method::POST, Version::HTTP_11, &valid()),
            Err(UpgradeError::MethodOrVersion)
        );
        assert_eq!(
            classify_upgrade(&Method::GET, Version::HTTP_10, &valid()),
            Err(UpgradeError::MethodOrVersion)
        );
    }
}
