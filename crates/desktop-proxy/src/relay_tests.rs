//! The relay between real sockets: the browser's side plain TCP, the desktop's side TLS over
//! TCP (as in production, where the TLS reader hands out one record per read). Correctness
//! only — nothing here is timed.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, duplex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::RelayCounters;
use crate::relay::{MAX_READ, RelayStats, SHRINK_AFTER, relay};

/// Bytes that differ from one position to the next, so a dropped, repeated or reordered
/// piece shows.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

fn tls_acceptor() -> TlsAcceptor {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// A TCP pair on loopback: (connected side, accepted side).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (connected, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (connected, accepted) = (connected.unwrap(), accepted.unwrap().0);
    connected.set_nodelay(true).unwrap();
    accepted.set_nodelay(true).unwrap();
    (connected, accepted)
}

/// The desktop's side: a TLS server stream (the "desktop") and the relay's TLS client stream.
async fn tls_pair() -> (
    tokio_rustls::server::TlsStream<TcpStream>,
    tokio_rustls::client::TlsStream<TcpStream>,
) {
    let (client_tcp, server_tcp) = tcp_pair().await;
    let connector = TlsConnector::from(Arc::new(crate::tls::unverified_config().unwrap()));
    let name = ServerName::try_from("localhost").unwrap();
    let (client, server) = tokio::join!(connector.connect(name, client_tcp), tls_acceptor().accept(server_tcp));
    (server.unwrap(), client.unwrap())
}

/// Browser socket, desktop socket and the relay between them (initial read 8 KiB, as by
/// default).
async fn relayed() -> (
    TcpStream,
    tokio_rustls::server::TlsStream<TcpStream>,
    JoinHandle<std::io::Result<RelayStats>>,
    Arc<RelayCounters>,
) {
    let (browser, client_side) = tcp_pair().await;
    let (desktop, upstream_side) = tls_pair().await;
    let counters = Arc::new(RelayCounters::default());
    let task = tokio::spawn(relay(
        client_side,
        upstream_side,
        8 * 1024,
        Duration::from_secs(30),
        counters.clone(),
    ));
    (browser, desktop, task, counters)
}

/// Sends `data` from `from` while reading the same number of bytes at `to`; returns them.
async fn across<A, B>(from: &mut A, to: &mut B, data: &[u8]) -> Vec<u8>
where
    A: AsyncWrite + Unpin,
    B: AsyncRead + Unpin,
{
    let mut got = vec![0u8; data.len()];
    let (sent, read) = tokio::join!(
        async {
            from.write_all(data).await?;
            from.flush().await
        },
        to.read_exact(&mut got)
    );
    sent.unwrap();
    read.unwrap();
    got
}

/// Large transfers both ways, a quiet spell (the relay drops back to small reads and frees
/// what it held), then large again, then small messages: every byte arrives unchanged and in
/// order through the growing and shrinking reads.
#[tokio::test]
async fn echoes_byte_exact_across_buffer_growth_and_shrink() {
    let (mut browser, mut desktop, task, counters) = relayed().await;
    let mut total = 0u64;
    for (round, len) in [3 * 1024 * 1024 + 17, 1, 700_001, 8, 5 * MAX_READ + 3]
        .into_iter()
        .enumerate()
    {
        let up = pattern(len, round as u32);
        assert_eq!(
            across(&mut browser, &mut desktop, &up).await,
            up,
            "browser → desktop, round {round}"
        );
        let down = pattern(len, 1000 + round as u32);
        assert_eq!(
            across(&mut desktop, &mut browser, &down).await,
            down,
            "desktop → browser, round {round}"
        );
        total += len as u64;
        // Quiet long enough for the reads to start small again (the shrink).
        tokio::time::sleep(SHRINK_AFTER + Duration::from_millis(50)).await;
    }
    // Both ways at once, as a desktop streams while the user types.
    let up = pattern(2 * 1024 * 1024, 7);
    let down = pattern(2 * 1024 * 1024 + 5, 8);
    let (mut b_read, mut b_write) = tokio::io::split(browser);
    let (mut d_read, mut d_write) = tokio::io::split(desktop);
    let (got_up, got_down) = tokio::join!(
        across(&mut b_write, &mut d_read, &up),
        across(&mut d_write, &mut b_read, &down)
    );
    assert_eq!(got_up, up);
    assert_eq!(got_down, down);
    assert_eq!(counters.client_to_desktop(), total + up.len() as u64);
    assert_eq!(counters.desktop_to_client(), total + down.len() as u64);
    drop((b_read, b_write, d_read, d_write));
    let stats = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    // Both peers vanished without a clean close: either outcome ends the relay, no hang.
    if let Ok(stats) = stats {
        assert_eq!(stats.client_to_desktop, total + up.len() as u64);
    }
}

/// The browser closes its sending side first: the desktop sees end of stream and can still
/// answer, and the browser reads the answer to its end.
#[tokio::test]
async fn browser_half_close_passes_on_and_the_desktop_still_answers() {
    let (mut browser, mut desktop, task, _) = relayed().await;
    let request = pattern(200_000, 1);
    browser.write_all(&request).await.unwrap();
    browser.shutdown().await.unwrap();
    let mut got = Vec::new();
    desktop.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, request);
    let answer = pattern(300_000, 2);
    desktop.write_all(&answer).await.unwrap();
    desktop.shutdown().await.unwrap();
    let mut back = Vec::new();
    browser.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, answer);
    let stats = task.await.unwrap().unwrap();
    assert_eq!((stats.client_to_desktop, stats.desktop_to_client), (200_000, 300_000));
    assert!(!stats.idle_timeout);
}

/// The desktop closes first (TLS close_notify, then its TCP side): the browser sees end of
/// stream and can still send, and the desktop still receives it.
#[tokio::test]
async fn desktop_half_close_passes_on_and_the_browser_still_sends() {
    let (mut browser, mut desktop, task, _) = relayed().await;
    let last_frame = pattern(150_000, 3);
    desktop.write_all(&last_frame).await.unwrap();
    desktop.shutdown().await.unwrap();
    let mut got = Vec::new();
    browser.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, last_frame);
    let more = pattern(250_000, 4);
    let mut back = vec![0u8; more.len()];
    let (sent, read) = tokio::join!(
        async {
            browser.write_all(&more).await?;
            browser.shutdown().await
        },
        desktop.read_exact(&mut back)
    );
    sent.unwrap();
    read.unwrap();
    assert_eq!(back, more);
    let stats = task.await.unwrap().unwrap();
    assert_eq!((stats.client_to_desktop, stats.desktop_to_client), (250_000, 150_000));
}

/// A browser that reads slowly while the desktop sends as fast as it can: the relay reads
/// from the desktop only as fast as the browser takes it, so what it holds stays within one
/// read (`MAX_READ`) beyond what the pipe to the browser holds — however much the desktop
/// has to send. Then everything arrives unchanged.
#[tokio::test]
async fn slow_reader_keeps_the_relay_bounded() {
    // An in-memory pipe to the browser with a known capacity (a TCP socket's kernel buffers
    // grow with autotuning, which would blur the bound).
    const PIPE: usize = 16 * 1024;
    let (mut browser, client_side) = duplex(PIPE);
    let (mut desktop, upstream_side) = tls_pair().await;
    let counters = Arc::new(RelayCounters::default());
    let task = tokio::spawn(relay(
        client_side,
        upstream_side,
        8 * 1024,
        Duration::from_secs(30),
        counters.clone(),
    ));
    let data = pattern(6 * 1024 * 1024, 9);
    let send = data.clone();
    let sender = tokio::spawn(async move {
        desktop.write_all(&send).await.unwrap();
        desktop.shutdown().await.unwrap();
        desktop
    });
    let mut got = Vec::with_capacity(data.len());
    let mut chunk = vec![0u8; 4096];
    let mut most_held = 0u64;
    let mut slow_reads = 0;
    loop {
        // Slowly at first (the relay must wait), then at full speed to finish.
        if slow_reads < 100 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            slow_reads += 1;
        }
        let n = browser.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
        // Read by the relay from the desktop but not yet taken by the browser.
        let held = counters.desktop_to_client() - got.len() as u64;
        most_held = most_held.max(held);
        assert!(
            held <= (PIPE + MAX_READ) as u64,
            "the relay holds {held} bytes for a slow browser (limit {})",
            PIPE + MAX_READ
        );
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the slow browser got other bytes than were sent");
    // The bound was reached: the test really pushed back on the relay.
    assert!(most_held > PIPE as u64, "only {most_held} bytes were ever held");
    let desktop = sender.await.unwrap();
    drop(browser);
    drop(desktop);
    let _ = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

/// A desktop that follows the client's order of cipher suites (rustls and OpenSSL do by
/// default) gets AES-128-GCM from the proxy: the cheaper suite for a bulk stream.
#[tokio::test]
async fn desktop_tls_prefers_aes_128_gcm() {
    let (desktop, relay_side) = tls_pair().await;
    let suite = |s: Option<rustls::SupportedCipherSuite>| s.map(|s| s.suite());
    assert_eq!(
        suite(relay_side.get_ref().1.negotiated_cipher_suite()),
        Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
    );
    assert_eq!(
        suite(desktop.get_ref().1.negotiated_cipher_suite()),
        Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
    );
}
