//! What a desktop's VNC server sends the portal's RFB client (`portal-rfb`): the handshake
//! and the server messages, from a server the student may have replaced.
//!
//! Input: everything the server sends, from its version line on; what the client writes goes
//! nowhere. The limits are small (64 × 64 pixels) so that the fuzzer reaches the bounds.
//!
//! Invariants: no panic; the framebuffer never exceeds the limits and always holds exactly
//! three bytes per pixel; every event consumed at least one input byte (so a session ends
//! when the input does); an input that ends is an error, never a hang.

use std::time::Duration;

use portal_rfb::{Client, Limits};

const MAX_SIDE: u16 = 64;

fn limits() -> Limits {
    Limits {
        max_width: MAX_SIDE,
        max_height: MAX_SIDE,
        max_pixels: u32::from(MAX_SIDE) * u32::from(MAX_SIDE),
        read_timeout: Duration::from_secs(1),
        message_timeout: Duration::from_secs(1),
        max_cut_text: 256,
    }
}

fn check(fb: &portal_rfb::Framebuffer) {
    assert!(
        fb.width() <= MAX_SIDE && fb.height() <= MAX_SIDE,
        "framebuffer beyond the limits"
    );
    assert_eq!(fb.rgb().len(), usize::from(fb.width()) * usize::from(fb.height()) * 3);
}

pub fn run(data: &[u8]) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_time().build() else {
        return;
    };
    rt.block_on(async {
        let stream = tokio::io::join(data, tokio::io::sink());
        let Ok(mut client) = Client::connect(stream, Some(b"password"), limits()).await else {
            return;
        };
        check(client.framebuffer());
        let mut events = 0usize;
        loop {
            let _ = client.request_update(true).await;
            match client.next_event(Duration::from_secs(1)).await {
                Ok(Some(_)) => {
                    events += 1;
                    assert!(events <= data.len(), "more messages than input bytes");
                    check(client.framebuffer());
                }
                Ok(None) => panic!("a slice never makes the client wait"),
                Err(_) => break,
            }
        }
    });
}
