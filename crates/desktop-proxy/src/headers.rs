//! Header rewriting between the browser and the desktop.

use http::HeaderValue;
use http::header::{self, HeaderMap, HeaderName};

/// Hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy as-is.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, including any the `Connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Prepares the browser's headers for the desktop: the portal's cookies and the browser's
/// credentials stay behind, forwarding headers describe the real client, and the desktop's
/// own credentials go in.
pub fn upstream_request_headers(
    headers: &mut HeaderMap,
    ctx: &crate::ForwardContext,
    auth: Option<&HeaderValue>,
    websocket: bool,
) {
    strip_hop_by_hop(headers);
    headers.remove(header::COOKIE);
    headers.remove(header::AUTHORIZATION);
    // hyper sets Host from the upstream URI; the browser's Host names the portal.
    headers.remove(header::HOST);
    headers.remove(header::FORWARDED);
    headers.remove(HeaderName::from_static("x-forwarded-for"));
    headers.remove(HeaderName::from_static("x-forwarded-proto"));
    headers.remove(HeaderName::from_static("x-forwarded-host"));
    headers.remove(HeaderName::from_static("x-real-ip"));

    if let Ok(v) = HeaderValue::from_str(&ctx.client_addr.ip().to_string()) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), v);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(if ctx.https { "https" } else { "http" }),
    );
    if let Some(host) = &ctx.host {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    if let Some(auth) = auth {
        headers.insert(header::AUTHORIZATION, auth.clone());
    }
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
}

/// Response headers a desktop may not send: cookies (on the portal's origin they could
/// overwrite its session; on a desktop origin the portal's own cookie is the only one), and
/// headers that would outlive the page or reach beyond it — a service worker scope, wiping or
/// reporting on the origin's data, other protocols or hosts, HSTS decisions for the school's
/// domain. The portal sets what its origins need itself.
pub const DESKTOP_MAY_NOT_SEND: [&str; 8] = [
    "set-cookie",
    "service-worker-allowed",
    "clear-site-data",
    "nel",
    "report-to",
    "reporting-endpoints",
    "alt-svc",
    "strict-transport-security",
];

/// Prepares the desktop's response headers for the browser (see [`DESKTOP_MAY_NOT_SEND`]).
pub fn downstream_response_headers(headers: &mut HeaderMap, websocket: bool) {
    strip_hop_by_hop(headers);
    for name in DESKTOP_MAY_NOT_SEND {
        headers.remove(name);
    }
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connection_named_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-secret").is_none());
        assert!(h.get(header::TRANSFER_ENCODING).is_none());
        assert!(h.get(header::CONNECTION).is_none());
        assert_eq!(h.get("x-kept").unwrap(), "1");
    }

    #[test]
    fn set_cookie_from_desktop_never_reaches_the_browser() {
        let mut h = HeaderMap::new();
        h.insert(header::SET_COOKIE, HeaderValue::from_static("session=evil"));
        h.insert("cross-origin-embedder-policy", HeaderValue::from_static("require-corp"));
        for name in DESKTOP_MAY_NOT_SEND {
            h.append(name, HeaderValue::from_static("x"));
        }
        downstream_response_headers(&mut h, false);
        for name in DESKTOP_MAY_NOT_SEND {
            assert!(h.get(name).is_none(), "{name} passed");
        }
        assert_eq!(h.get("cross-origin-embedder-policy").unwrap(), "require-corp");
    }
}
