//! A browser's request head, read as the portal's HTTP server reads it (httparse, as in hyper),
//! then classified as a WebSocket upgrade or not and rewritten for the desktop.
//!
//! Invariants: an upgrade is accepted only in exactly the shape RFC 6455 asks for, with one
//! unambiguous key, version and Origin, and the Origin handed on is the one the browser sent;
//! what reaches the desktop never carries the browser's cookies or credentials, and what
//! reaches the browser never carries the headers a desktop may not send.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use base64::Engine as _;
use desktop_proxy::fuzzing::{DESKTOP_MAY_NOT_SEND, downstream_response_headers, upstream_request_headers};
use desktop_proxy::{ForwardContext, UpgradeError, classify_upgrade};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Version};

/// hyper's default; heads with more headers are refused before any of this runs.
const MAX_HEADERS: usize = 100;

/// A parsed head, as hyper would hand it to the portal.
pub struct Head {
    pub method: Method,
    pub version: Version,
    pub path: String,
    pub headers: HeaderMap,
}

/// Parses a complete request head; `None` where hyper would answer 400 itself.
pub fn parse(data: &[u8]) -> Option<Head> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    if !req.parse(data).ok()?.is_complete() {
        return None;
    }
    let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
    let version = match req.version? {
        0 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let path = req.path?.to_owned();
    let mut headers = HeaderMap::new();
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        headers.append(name, value);
    }
    Some(Head {
        method,
        version,
        path,
        headers,
    })
}

pub fn run(data: &[u8]) {
    let Some(head) = parse(data) else {
        return;
    };
    let verdict = classify_upgrade(&head.method, head.version, &head.headers);
    check_classification(&head, &verdict);
    check_upstream(&head, verdict.ok().flatten().is_some());
    check_downstream(&head);
}

fn all<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a HeaderValue> {
    headers.get_all(name).iter().collect()
}

fn check_classification(head: &Head, verdict: &Result<Option<desktop_proxy::WebSocketRequest>, UpgradeError>) {
    let h = &head.headers;
    match verdict {
        Ok(None) => assert!(
            !h.contains_key(header::UPGRADE),
            "an Upgrade header was taken for a plain request"
        ),
        Err(_) => assert!(
            h.contains_key(header::UPGRADE),
            "a plain request was refused as a bad upgrade"
        ),
        Ok(Some(ws)) => {
            assert!(head.method == Method::GET && head.version == Version::HTTP_11);
            let upgrade = all(h, "upgrade");
            assert!(upgrade[0].as_bytes().eq_ignore_ascii_case(b"websocket"));
            let keys = all(h, "sec-websocket-key");
            assert_eq!(keys.len(), 1, "one key");
            let key = base64::engine::general_purpose::STANDARD.decode(keys[0].as_bytes());
            assert_eq!(key.map(|k| k.len()).ok(), Some(16), "a 16-byte key");
            assert_eq!(all(h, "sec-websocket-version"), [&HeaderValue::from_static("13")]);
            // The Origin checked is the one and only Origin the desktop will see.
            let origins = match all(h, "origin") {
                o if o.is_empty() => all(h, "sec-websocket-origin"),
                o => o,
            };
            assert_eq!(origins.len(), 1, "an unambiguous Origin");
            assert_eq!(origins[0].as_bytes(), ws.origin.as_bytes());
            for p in &ws.protocols {
                assert!(!p.is_empty() && !p.contains(',') && p.trim() == p, "protocol {p:?}");
            }
        }
    }
}

fn check_upstream(head: &Head, websocket: bool) {
    let client: IpAddr = Ipv4Addr::new(203, 0, 113, 9).into();
    let basic = HeaderValue::from_static("Basic a2FzbV91c2VyOmRlc2t0b3Atc2VjcmV0");
    let ctx = ForwardContext {
        client_addr: SocketAddr::new(client, 4711),
        https: true,
        host: head.headers.get(header::HOST).cloned(),
        path_and_query: "/".to_owned(),
        websocket: None,
        stop: None,
        hold: None,
    };
    for auth in [Some(&basic), None] {
        let mut h = head.headers.clone();
        upstream_request_headers(&mut h, &ctx, auth, websocket);
        assert!(
            !h.contains_key(header::COOKIE),
            "the portal's cookies reached a desktop"
        );
        assert_eq!(
            all(&h, "authorization"),
            auth.into_iter().collect::<Vec<_>>(),
            "only the desktop's own credentials go upstream"
        );
        for name in [
            "proxy-authorization",
            "forwarded",
            "x-real-ip",
            "transfer-encoding",
            "te",
            "trailer",
            "keep-alive",
            "proxy-connection",
        ] {
            assert!(!h.contains_key(name), "{name} reached a desktop");
        }
        assert_eq!(all(&h, "x-forwarded-for"), [&HeaderValue::from_static("203.0.113.9")]);
        assert_eq!(all(&h, "x-forwarded-proto"), [&HeaderValue::from_static("https")]);
        assert_eq!(all(&h, "x-forwarded-host"), ctx.host.iter().collect::<Vec<_>>());
        if websocket {
            assert_eq!(all(&h, "upgrade"), [&HeaderValue::from_static("websocket")]);
            assert_eq!(all(&h, "connection"), [&HeaderValue::from_static("Upgrade")]);
        } else {
            assert!(!h.contains_key(header::UPGRADE) && !h.contains_key(header::CONNECTION));
        }
    }
}

/// The same header block as a desktop's response.
fn check_downstream(head: &Head) {
    for websocket in [false, true] {
        let mut h = head.headers.clone();
        downstream_response_headers(&mut h, websocket);
        for name in DESKTOP_MAY_NOT_SEND {
            assert!(!h.contains_key(name), "a desktop's {name} reached the browser");
        }
        assert!(!h.contains_key(header::TRANSFER_ENCODING));
    }
}
