//! The browser's address: the TCP peer, or — only when that peer is a configured reverse proxy
//! (`proxy.trusted_proxies`) — what the proxies recorded in `X-Forwarded-For`.
//!
//! A client can put anything in `X-Forwarded-For`; each proxy only appends the address it saw.
//! So the list is read from the right: every entry added by a trusted hop is believed, and the
//! first address that is not a trusted proxy is the client. Everything left of it was written
//! by that client and is ignored. With no trusted proxies configured (the default) the header
//! is never read, so a portal exposed directly cannot be fooled by it.
//!
//! The result feeds the sign-in brake, the logs and the `X-Forwarded-For` a desktop receives.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use http::HeaderMap;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// At most this many `X-Forwarded-For` entries are looked at, from the right: real chains have
/// two or three hops, and a header stuffed with thousands of entries must not cost more.
const MAX_HOPS: usize = 16;

/// An entry of `proxy.trusted_proxies` is not an address or network.
#[derive(Debug, thiserror::Error)]
pub enum TrustedProxiesError {
    #[error("{0:?} is not an IP address or network; write e.g. \"10.0.0.5\", \"10.0.0.0/8\" or \"fd00::/8\"")]
    Invalid(String),
}

/// Addresses and networks of the reverse proxies in front of the portal. Written as a list
/// (`["127.0.0.1", "10.0.0.0/8"]`) or, for environment variables, one comma-separated string
/// (`IRD_PROXY__TRUSTED_PROXIES=127.0.0.1,::1`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "ListOrString", into = "Vec<String>")]
pub struct TrustedProxies(Vec<IpNet>);

#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrString {
    List(Vec<String>),
    One(String),
}

impl TryFrom<ListOrString> for TrustedProxies {
    type Error = TrustedProxiesError;

    fn try_from(value: ListOrString) -> Result<Self, Self::Error> {
        match value {
            ListOrString::List(items) => items
                .iter()
                .map(|s| parse_net(s))
                .collect::<Result<_, _>>()
                .map(TrustedProxies),
            ListOrString::One(s) => s.parse(),
        }
    }
}

impl From<TrustedProxies> for Vec<String> {
    fn from(t: TrustedProxies) -> Self {
        t.0.iter().map(ToString::to_string).collect()
    }
}

impl FromStr for TrustedProxies {
    type Err = TrustedProxiesError;

    /// Comma-separated; empty entries are skipped so `""` means "none".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(parse_net)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&items.join(", "))
    }
}

/// `10.0.0.5` (one host) or `10.0.0.0/8`; host bits in a network are refused, since
/// `10.0.0.5/8` is more likely a typo than a wish to trust all of 10/8.
fn parse_net(s: &str) -> Result<IpNet, TrustedProxiesError> {
    let s = s.trim();
    let invalid = || TrustedProxiesError::Invalid(s.to_owned());
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip.to_canonical()));
    }
    let net: IpNet = s.parse().map_err(|_| invalid())?;
    if net.trunc() != net {
        return Err(invalid());
    }
    Ok(net)
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        // Several X-Forwarded-For lines form one list, in order (RFC 9110 §5.3).
        let mut entries = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|v| match v.to_str() {
                Ok(s) => s.rsplit(',').map(Some).collect::<Vec<_>>(),
                // Not ASCII: nothing in it can be trusted, and nothing left of it either.
                Err(_) => vec![None],
            })
            .take(MAX_HOPS);
        for entry in &mut entries {
            // A malformed entry ends the walk: the last trusted hop is the best we know.
            let Some(ip) = entry.and_then(parse_forwarded_ip) else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an IP address, optionally `1.2.3.4:port` or `[v6]:port`
/// (some proxies add the port).
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    entry.parse::<SocketAddr>().ok().map(|a| a.ip().to_canonical())
}

/// The unit in which one client's requests are counted (sign-in brake, audit throttle,
/// pending sign-ins, connections): an IPv4 address, or an IPv6 address's /64 network, since
/// one household or server is routinely handed a whole /64 and could otherwise count as
/// 2^64 clients.
pub fn client_group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
        v4 => v4,
    }
}

/// The browser's address as far as the portal can tell, and the TCP peer it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr {
    pub(crate) ip: IpAddr,
    pub(crate) peer: SocketAddr,
}

impl ClientAddr {
    /// As a socket address for the desktop proxy, which only reads the IP (the port is the
    /// peer's when the peer is the client, else 0: a forwarded port is not known).
    pub(crate) fn socket_addr(&self) -> SocketAddr {
        let port = if self.ip == self.peer.ip().to_canonical() {
            self.peer.port()
        } else {
            0
        };
        SocketAddr::new(self.ip, port)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64_network() {
        assert_eq!(client_group(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_group(ip("2001:db8:1:2:ffff::9")), ip("2001:db8:1:2::"));
        assert_ne!(client_group(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_group(ip("10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(client_group(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
    }

    fn trusted(s: &str) -> TrustedProxies {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let t = TrustedProxies::default();
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), &headers(&["203.0.113.9"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_spoof_its_address() {
        let t = trusted("10.0.0.0/8");
        assert_eq!(
            t.client_ip(ip("192.0.2.1"), &headers(&["203.0.113.9"])),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let t = trusted("10.0.0.0/8, 127.0.0.1");
        // The client claimed 1.1.1.1; the outer proxy saw 198.51.100.7; an inner proxy 10.1.2.3.
        let h = headers(&["1.1.1.1, 198.51.100.7", "10.1.2.3"]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        let t = trusted("127.0.0.1");
        assert_eq!(t.client_ip(ip("127.0.0.1"), &HeaderMap::new()), ip("127.0.0.1"));
    }

    #[test]
    fn malformed_entries_stop_at_the_last_trusted_hop() {
        let t = trusted("127.0.0.1,10.0.0.0/8");
        for bad in ["", "unknown", "300.1.1.1", "1.2.3.4.5", "_hidden", "1.2.3.4 5.6.7.8"] {
            let h = headers(&[&format!("203.0.113.9, {bad}, 10.0.0.2")]);
            assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("10.0.0.2"), "{bad:?}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"203.0.113.9, \xff").unwrap(),
        );
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }

    #[test]
    fn ports_and_mapped_addresses_are_understood() {
        let t = trusted("127.0.0.1, ::1");
        let h = headers(&["[2001:db8::7]:4711"]);
        assert_eq!(t.client_ip(ip("::ffff:127.0.0.1"), &h), ip("2001:db8::7"));
        let h = headers(&["203.0.113.9:1234"]);
        assert_eq!(t.client_ip(ip("::1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn a_huge_header_costs_at_most_max_hops_entries() {
        let t = trusted("127.0.0.1");
        // Thousands of trusted-looking entries: the walk stops after MAX_HOPS with a trusted one.
        let long = vec!["127.0.0.1"; 5000].join(",");
        let h = headers(&[&format!("203.0.113.9,{long}")]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }

    #[test]
    fn settings_parse_hosts_networks_and_refuse_the_rest() {
        let t = trusted(" 10.0.0.5 , 192.168.0.0/16,fd00::/8,::1");
        assert!(t.contains(ip("10.0.0.5")) && !t.contains(ip("10.0.0.6")));
        assert!(t.contains(ip("192.168.44.1")) && t.contains(ip("fd12::1")));
        assert!(t.contains(ip("::ffff:10.0.0.5")));
        assert_eq!(t.to_string(), "10.0.0.5/32, 192.168.0.0/16, fd00::/8, ::1/128");
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        for bad in ["10.0.0.5/8", "10.0.0.0/33", "proxy.school", "10.0.0.0/", "*"] {
            let err = bad.parse::<TrustedProxies>().unwrap_err().to_string();
            assert!(err.contains(bad), "{bad:?} → {err}");
        }
    }
}
