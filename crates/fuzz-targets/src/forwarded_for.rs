//! The client address behind trusted reverse proxies (`net::client_addr`): the
//! `proxy.trusted_proxies` setting and the `X-Forwarded-For` walk.
//!
//! Input: a `trusted_proxies` value, the TCP peer's address, then one `X-Forwarded-For` line
//! per input line (any bytes).
//!
//! Invariants: the setting prints back to itself; an untrusted peer is always the client;
//! the client is the peer or an address some entry names, never an invented one; when the
//! walk from the right meets an untrusted address before anything malformed (within the hop
//! limit), that address is the client — a trusted proxy is never reported while an untrusted
//! hop exists; and whatever the browser wrote to the left of that hop changes nothing.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderValue};
use portal::net::client_addr::TrustedProxies;

/// `client_addr::MAX_HOPS`: how many entries, from the right, are looked at.
const MAX_HOPS: usize = 16;
const DEFAULT_TRUSTED: &str = "127.0.0.1, ::1, 10.0.0.0/8, fd00::/8";

pub fn run(data: &[u8]) {
    let lines = crate::lines(data, 64);
    let setting = String::from_utf8_lossy(lines.first().copied().unwrap_or_default());
    let trusted = match setting.parse::<TrustedProxies>() {
        Ok(t) => {
            let again: TrustedProxies = t
                .to_string()
                .parse()
                .unwrap_or_else(|e| panic!("{t} does not parse back: {e}"));
            assert_eq!(again, t, "{setting:?} prints back");
            t
        }
        Err(e) => {
            assert!(e.to_string().contains("is not an IP address"), "{e}");
            DEFAULT_TRUSTED.parse().unwrap_or_default()
        }
    };
    let peer = std::str::from_utf8(lines.get(1).copied().unwrap_or_default())
        .ok()
        .and_then(|p| p.trim().parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let mut headers = HeaderMap::new();
    let mut values = Vec::new();
    for line in lines.iter().skip(2) {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append("x-forwarded-for", v.clone());
            values.push(v);
        }
    }
    check(&trusted, peer, &headers, &values);
}

/// One entry as a proxy writes it: an address, or `1.2.3.4:port` / `[v6]:port`.
fn entry_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

fn check(trusted: &TrustedProxies, peer: IpAddr, headers: &HeaderMap, values: &[HeaderValue]) {
    let client = trusted.client_ip(peer, headers);
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        assert_eq!(client, peer, "an untrusted peer chose its own address");
        return;
    }
    // The entries from the right: `None` for one that is no address (or a line not ASCII).
    let entries: Vec<Option<IpAddr>> = values
        .iter()
        .rev()
        .flat_map(|v| match v.to_str() {
            Ok(s) => s.rsplit(',').map(entry_ip).collect(),
            Err(_) => vec![None],
        })
        .take(MAX_HOPS)
        .collect();
    assert!(
        client == peer || entries.contains(&Some(client)),
        "{client} is neither the peer nor in {entries:?}"
    );
    let first_untrusted = entries
        .iter()
        .take_while(|e| e.is_some())
        .flatten()
        .find(|ip| !trusted.contains(**ip));
    if let Some(untrusted) = first_untrusted {
        assert_eq!(
            client, *untrusted,
            "a trusted hop was reported while an untrusted one exists"
        );
        // The browser controls everything left of that hop: writing more there changes nothing.
        let mut spoofed = HeaderMap::new();
        for (i, v) in values.iter().enumerate() {
            let v = if i == 0 {
                let mut bytes = b"198.51.100.1, 10.0.0.1, unknown, ".to_vec();
                bytes.extend_from_slice(v.as_bytes());
                HeaderValue::from_bytes(&bytes).unwrap_or_else(|_| v.clone())
            } else {
                v.clone()
            };
            spoofed.append("x-forwarded-for", v);
        }
        spoofed.insert("x-real-ip", HeaderValue::from_static("198.51.100.2"));
        assert_eq!(
            trusted.client_ip(peer, &spoofed),
            client,
            "the client's own entries moved the result"
        );
    } else {
        // Only trusted hops (or nothing readable): the client is trusted, the peer or a hop.
        assert!(trusted.contains(client), "{client} invented");
    }
}
