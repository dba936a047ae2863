//! Where to connect and with which headers; refuses anything but `127.0.0.1`.

use std::net::Ipv4Addr;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::Args;
use url::{Host, Url};

/// Connection options shared by the `ws`, `idle` and `http` modes.
#[derive(Args, Clone, Debug)]
pub(crate) struct Endpoint {
    /// `ws://127.0.0.1:PORT/path`, `wss://…` (or `http(s)://…` for `http`).
    #[arg(long)]
    pub(crate) url: String,
    /// `Cookie` header value, e.g. `ird_session=…`.
    #[arg(long)]
    pub(crate) cookie: Option<String>,
    /// `Origin` header (WebSocket modes default to the URL's own origin).
    #[arg(long)]
    pub(crate) origin: Option<String>,
    /// `Host` header, e.g. a desktop origin's `lab.localhost:PORT` (default: the URL's
    /// `127.0.0.1:PORT`); the connection still goes to 127.0.0.1.
    #[arg(long)]
    pub(crate) host: Option<String>,
    /// Basic Auth credentials, sent as `Authorization: Basic …`.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub(crate) basic_auth: Option<String>,
    /// Name of this run in the output, e.g. `direct` or `portal`.
    #[arg(long, default_value = "run")]
    pub(crate) label: String,
}

/// A checked URL on 127.0.0.1.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) url: Url,
    pub(crate) tls: bool,
    pub(crate) port: u16,
    pub(crate) path_and_query: String,
    /// `Authorization` header value, if any.
    pub(crate) authorization: Option<String>,
    pub(crate) cookie: Option<String>,
    pub(crate) origin: String,
    /// `Host` header value.
    pub(crate) host: String,
}

impl Target {
    /// `websocket` selects `ws`/`wss` schemes, otherwise `http`/`https`.
    pub(crate) fn parse(endpoint: &Endpoint, websocket: bool) -> anyhow::Result<Target> {
        let url = Url::parse(&endpoint.url).with_context(|| format!("--url {:?}", endpoint.url))?;
        let (plain, secure) = if websocket { ("ws", "wss") } else { ("http", "https") };
        let tls = match url.scheme() {
            s if s == plain => false,
            s if s == secure => true,
            other => bail!("--url: scheme {other:?} is not {plain} or {secure}"),
        };
        if url.host() != Some(Host::Ipv4(Ipv4Addr::LOCALHOST)) {
            bail!("--url: wsbench only targets 127.0.0.1 (got {:?})", url.host_str());
        }
        let port = url
            .port_or_known_default()
            .context("--url: no port and no default for the scheme")?;
        let mut path_and_query = url.path().to_owned();
        if let Some(query) = url.query() {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        let authorization = endpoint.basic_auth.as_deref().map(|creds| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(creds);
            format!("Basic {encoded}")
        });
        let origin = endpoint.origin.clone().unwrap_or_else(|| {
            let scheme = if tls { "https" } else { "http" };
            format!("{scheme}://127.0.0.1:{port}")
        });
        for (name, value) in [
            ("--cookie", endpoint.cookie.as_deref()),
            ("--origin", Some(origin.as_str())),
            ("--host", endpoint.host.as_deref()),
            ("--basic-auth", endpoint.basic_auth.as_deref()),
        ] {
            if value.is_some_and(|v| v.contains(['\r', '\n'])) {
                bail!("{name} must not contain line breaks");
            }
        }
        Ok(Target {
            url,
            tls,
            port,
            path_and_query,
            authorization,
            cookie: endpoint.cookie.clone(),
            origin,
            host: endpoint.host.clone().unwrap_or_else(|| format!("127.0.0.1:{port}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint {
            url: url.into(),
            cookie: None,
            origin: None,
            host: None,
            basic_auth: Some("u:p".into()),
            label: "t".into(),
        }
    }

    #[test]
    fn only_loopback_v4_is_accepted() {
        assert!(Target::parse(&endpoint("ws://127.0.0.1:1/x"), true).is_ok());
        for url in [
            "ws://localhost:1/",
            "ws://10.0.0.1:1/",
            "ws://[::1]:1/",
            "http://127.0.0.1:1/",
        ] {
            assert!(Target::parse(&endpoint(url), true).is_err(), "{url}");
        }
    }

    #[test]
    fn defaults_follow_the_url() -> anyhow::Result<()> {
        let t = Target::parse(&endpoint("wss://127.0.0.1/websockify?a=b"), true)?;
        assert_eq!((t.tls, t.port), (true, 443));
        assert_eq!(t.path_and_query, "/websockify?a=b");
        assert_eq!(t.origin, "https://127.0.0.1:443");
        assert_eq!(t.authorization.as_deref(), Some("Basic dTpw"));
        Ok(())
    }
}
