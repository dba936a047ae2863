//! `iserv-remote-desktop healthcheck`: asks the running portal's `/healthz`, for container
//! health checks (a `FROM scratch` image has no curl).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, bail};
use portal::Config;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long the whole check may take; Docker's own `--timeout` is the outer bound.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Exits with an error unless `GET /healthz` answers 200.
pub(crate) async fn run(url: Option<String>, config: Config) -> anyhow::Result<()> {
    let addr = match url {
        Some(url) => {
            let url: url::Url = url.parse().context("--url must be like http://127.0.0.1:5006")?;
            if url.scheme() != "http" {
                bail!("--url must be plain http: the portal itself never serves TLS");
            }
            let host = url.host_str().context("--url needs a host")?;
            let port = url.port_or_known_default().unwrap_or(80);
            tokio::net::lookup_host((host, port))
                .await?
                .next()
                .with_context(|| format!("{host} does not resolve"))?
        }
        None => reachable(config.listen),
    };
    tokio::time::timeout(TIMEOUT, check(addr))
        .await
        .with_context(|| format!("no answer from {addr} within {} s", TIMEOUT.as_secs()))?
}

/// A wildcard listen address is reached over loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port()),
        _ => listen,
    }
}

async fn check(addr: SocketAddr) -> anyhow::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = vec![0u8; 64];
    let n = stream.read(&mut head).await?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    if status_line.starts_with("HTTP/1.1 200") {
        println!("healthy");
        Ok(())
    } else {
        bail!(
            "/healthz at {addr} answered {:?}",
            status_line.lines().next().unwrap_or("nothing")
        )
    }
}
