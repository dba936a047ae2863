//! The client against scripted servers on in-memory streams: the real handshake and
//! messages, and servers that lie about sizes.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use portal_rfb::{Client, Event, Limits, RfbError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream, duplex};

/// The server's side of a 3.8 handshake with security None, up to ServerInit.
async fn serve_init(server: &mut DuplexStream, width: u16, height: u16, name: &[u8]) -> Vec<u8> {
    server.write_all(b"RFB 003.008\n").await.unwrap();
    let mut version = [0u8; 12];
    server.read_exact(&mut version).await.unwrap();
    assert_eq!(&version, b"RFB 003.008\n");
    server.write_all(&[2, 16, 1]).await.unwrap(); // two types: Tight (unsupported), None
    let mut chosen = [0u8; 1];
    server.read_exact(&mut chosen).await.unwrap();
    assert_eq!(chosen[0], 1);
    server.write_all(&0u32.to_be_bytes()).await.unwrap();
    let mut shared = [0u8; 1];
    server.read_exact(&mut shared).await.unwrap();
    assert_eq!(
        shared[0], 1,
        "the client must share the desktop with the student's own viewer"
    );
    let mut init = Vec::new();
    init.extend_from_slice(&width.to_be_bytes());
    init.extend_from_slice(&height.to_be_bytes());
    init.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
    init.extend_from_slice(&(name.len() as u32).to_be_bytes());
    init.extend_from_slice(name);
    server.write_all(&init).await.unwrap();
    // SetPixelFormat (20) + SetEncodings (4 + 3 × 4).
    let mut setup = [0u8; 36];
    server.read_exact(&mut setup).await.unwrap();
    setup.to_vec()
}

fn rect(x: u16, y: u16, w: u16, h: u16, encoding: i32) -> Vec<u8> {
    let mut r = Vec::new();
    for v in [x, y, w, h] {
        r.extend_from_slice(&v.to_be_bytes());
    }
    r.extend_from_slice(&encoding.to_be_bytes());
    r
}

fn limits() -> Limits {
    Limits {
        read_timeout: Duration::from_millis(500),
        message_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

#[tokio::test]
async fn raw_and_copyrect_updates_draw_the_screen() {
    let (client_io, mut server) = duplex(64 * 1024);
    let srv = tokio::spawn(async move {
        let setup = serve_init(&mut server, 4, 2, b"desk").await;
        assert_eq!(setup[0], 0, "SetPixelFormat first");
        assert_eq!(&setup[4..8], &[32, 24, 0, 1]);
        assert_eq!(setup[20], 2, "then SetEncodings");
        let mut request = [0u8; 10];
        server.read_exact(&mut request).await.unwrap();
        assert_eq!(request, [3, 0, 0, 0, 0, 0, 0, 4, 0, 2]);
        // Bell, clipboard text, a colour map, then an update: a red pixel at (0,0) copied to (3,1).
        let mut msg = vec![2, 3, 0, 0, 0, 0, 0, 0, 5];
        msg.extend_from_slice(b"hello");
        msg.extend_from_slice(&[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        msg.extend_from_slice(&[0, 0, 0, 2]);
        msg.extend(rect(0, 0, 1, 1, 0));
        msg.extend_from_slice(&[0, 0, 255, 0]);
        msg.extend(rect(3, 1, 1, 1, 1));
        msg.extend_from_slice(&[0, 0, 0, 0]);
        server.write_all(&msg).await.unwrap();
        server
    });
    let mut client = Client::connect(client_io, None, limits()).await.unwrap();
    assert_eq!((client.framebuffer().width(), client.framebuffer().height()), (4, 2));
    client.request_update(false).await.unwrap();
    let wait = Duration::from_secs(2);
    assert_eq!(client.next_event(wait).await.unwrap(), Some(Event::Ignored));
    assert_eq!(client.next_event(wait).await.unwrap(), Some(Event::Ignored));
    assert_eq!(client.next_event(wait).await.unwrap(), Some(Event::Ignored));
    assert_eq!(client.next_event(wait).await.unwrap(), Some(Event::Updated));
    let rgb = client.framebuffer().rgb();
    assert_eq!(&rgb[0..3], &[255, 0, 0]);
    assert_eq!(&rgb[(4 + 3) * 3..(4 + 4) * 3], &[255, 0, 0]);
    // Nothing more: the wait ends without an event and the session stays usable.
    assert_eq!(client.next_event(Duration::from_millis(50)).await.unwrap(), None);
    drop(srv.await.unwrap());
}

/// Runs a 2×2 session whose server then sends `hostile`; returns the client's verdict.
async fn after_init(hostile: Vec<u8>) -> Result<Option<Event>, RfbError> {
    let (client_io, mut server) = duplex(64 * 1024);
    let srv = tokio::spawn(async move {
        serve_init(&mut server, 2, 2, b"").await;
        let _ = server.write_all(&hostile).await;
        // Keep the stream open so that only the client's own checks end the session.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut client = Client::connect(client_io, None, limits()).await.unwrap();
    let verdict = client.next_event(Duration::from_secs(3)).await;
    srv.abort();
    verdict
}

#[tokio::test]
async fn lying_servers_are_refused_without_allocating_what_they_announce() {
    let mut outside = vec![0, 0, 0, 1];
    outside.extend(rect(1, 1, 2, 1, 0));
    assert!(matches!(after_init(outside).await, Err(RfbError::Protocol(_))));

    let mut copy_from_outside = vec![0, 0, 0, 1];
    copy_from_outside.extend(rect(0, 0, 1, 1, 1));
    copy_from_outside.extend_from_slice(&[0xff, 0xff, 0, 0]);
    assert!(matches!(
        after_init(copy_from_outside).await,
        Err(RfbError::Protocol(_))
    ));

    let mut huge_resize = vec![0, 0, 0, 1];
    huge_resize.extend(rect(0, 0, 65535, 65535, -223));
    assert!(matches!(after_init(huge_resize).await, Err(RfbError::TooLarge { .. })));

    let mut unasked = vec![0, 0, 0, 1];
    unasked.extend(rect(0, 0, 1, 1, 16));
    assert!(matches!(after_init(unasked).await, Err(RfbError::Protocol(_))));

    let huge_clipboard = vec![3, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
    assert!(matches!(after_init(huge_clipboard).await, Err(RfbError::Protocol(_))));

    assert!(matches!(after_init(vec![9]).await, Err(RfbError::Protocol(_))));

    // A message that starts and then stalls times out instead of hanging.
    assert!(matches!(after_init(vec![0, 0, 0]).await, Err(RfbError::Timeout(_))));
}

#[tokio::test]
async fn a_resize_replaces_the_framebuffer() {
    let mut resize = vec![0, 0, 0, 1];
    resize.extend(rect(0, 0, 8, 6, -223));
    assert_eq!(after_init(resize).await.unwrap(), Some(Event::Resized));
}

#[tokio::test]
async fn handshakes_of_other_versions_and_refusals() {
    // RFB 3.3: the server picks the type; None has no security result.
    let (client_io, mut server) = duplex(4096);
    let srv = tokio::spawn(async move {
        server.write_all(b"RFB 003.003\n").await.unwrap();
        let mut version = [0u8; 12];
        server.read_exact(&mut version).await.unwrap();
        assert_eq!(&version, b"RFB 003.003\n");
        server.write_all(&1u32.to_be_bytes()).await.unwrap();
        let mut shared = [0u8; 1];
        server.read_exact(&mut shared).await.unwrap();
        let mut init = vec![0, 1, 0, 1];
        init.extend_from_slice(&[0; 16]);
        init.extend_from_slice(&[0, 0, 0, 0]);
        server.write_all(&init).await.unwrap();
        let mut setup = [0u8; 36];
        server.read_exact(&mut setup).await.unwrap();
    });
    let client = Client::connect(client_io, None, limits()).await.unwrap();
    assert_eq!(client.framebuffer().width(), 1);
    srv.await.unwrap();

    // A refusal with a reason; a password request without a password; not RFB at all.
    let refusal = |bytes: &'static [u8]| async move {
        let (client_io, mut server) = duplex(4096);
        tokio::spawn(async move {
            let _ = server.write_all(bytes).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        });
        Client::connect(client_io, None, limits()).await.err()
    };
    assert!(matches!(
        refusal(b"RFB 003.008\n\x00\x00\x00\x00\x02no").await,
        Some(RfbError::Refused)
    ));
    assert!(matches!(
        refusal(b"RFB 003.008\n\x01\x02").await,
        Some(RfbError::PasswordNeeded)
    ));
    assert!(matches!(
        refusal(b"RFB 003.008\n\x01\x10").await,
        Some(RfbError::NoSecurityType)
    ));
    assert!(matches!(refusal(b"HTTP/1.1 400 Bad").await, Some(RfbError::NotRfb)));
    assert!(matches!(refusal(b"RFB 003.008\n").await, Some(RfbError::Timeout(_))));
}
