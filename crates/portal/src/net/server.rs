//! The HTTP/1.1 server loop: limits on request heads and on open connections (in total and
//! per client address), TCP_NODELAY, upgrades, and a graceful stop. Written on hyper directly
//! because `axum::serve` does not expose the head limits.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;
use tracing::{debug, info};

use crate::net::client_addr::{TrustedProxies, client_group};
use crate::net::keyed_slots::KeyedSlots;

/// Refusals being written at once at most; beyond it a refused connection is just closed.
const MAX_REFUSALS: usize = 64;

/// Largest read from a connection. Hyper hands a request body over in pieces of at most
/// this, so it sets how many reads, pieces and wake-ups an upload costs: with the head limit
/// as the buffer size (16 KiB, as before) a 1 GiB upload was 65,536 pieces. The buffer only
/// grows this large while reads fill it, so idle connections keep a small one.
const READ_BUFFER: usize = 512 * 1024;

/// Limits applied to every browser connection.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Largest request head; larger gets 431.
    pub max_header_bytes: usize,
    /// Time allowed for a request head to arrive (slowloris).
    pub header_timeout: Duration,
    /// Open connections are given this long to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Connections open at once; beyond it new ones get 503 and are closed.
    pub max_connections: usize,
    /// Connections open at once from one address (IPv6: one /64); beyond it 429. Reverse
    /// proxies in `trusted` carry many clients and count only toward the total.
    pub max_connections_per_address: usize,
    pub trusted: TrustedProxies,
    /// The texts of those two answers (the caller translates them).
    pub busy_text: String,
    pub too_many_text: String,
}

/// Answers a connection over a limit with `status` and `text`, then closes it. The request is
/// read (a little, briefly) first so that closing does not reset the answer away.
async fn refuse(mut stream: TcpStream, status: &str, text: &str) {
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{text}",
        text.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        // Drain what the client still sends until it closes, so the answer is not lost.
        while stream.read(&mut buf).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = KeyedSlots::new(limits.max_connections_per_address);
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Finished connection tasks are reaped here so the set does not grow.
        while connections.try_join_next().is_some() {}
        let peer_ip = peer.ip().to_canonical();
        let address_slot = if limits.trusted.contains(peer_ip) {
            None
        } else {
            match per_address.take(&client_group(peer_ip)) {
                Some(slot) => Some(slot),
                None => {
                    debug!(%peer, "too many connections from this address");
                    refuse_later(
                        &mut connections,
                        &refusals,
                        stream,
                        "429 Too Many Requests",
                        &limits.too_many_text,
                    );
                    continue;
                }
            }
        };
        let Ok(total_slot) = total.clone().try_acquire_owned() else {
            debug!(%peer, "too many connections in total");
            refuse_later(
                &mut connections,
                &refusals,
                stream,
                "503 Service Unavailable",
                &limits.busy_text,
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app
            .clone()
            .map_request(move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            });
        let mut stop = stop_rx.clone();
        let (max_header_bytes, header_timeout) = (limits.max_header_bytes, limits.header_timeout);
        connections.spawn(async move {
            let _slots = (address_slot, total_slot);
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .max_header_size(max_header_bytes)
                .max_buf_size(READ_BUFFER.max(max_header_bytes))
                .header_read_timeout(header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => { if let Err(e) = res { debug!(error = %e, %peer, "connection ended with an error"); } }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    info!(open = connections.len(), "shutting down");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Writes a refusal on its own task (bounded by `refusals`), so the accept loop never waits.
fn refuse_later(
    connections: &mut JoinSet<()>,
    refusals: &Arc<Semaphore>,
    stream: TcpStream,
    status: &'static str,
    text: &str,
) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    let text = text.to_owned();
    connections.spawn(async move {
        let _permit = permit;
        refuse(stream, status, &text).await;
    });
}
