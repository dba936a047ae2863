//! Screens as JPEG: scaled in memory, never written anywhere.

use super::Frame;

/// Quality of thumbnails and watched frames: text stays readable at a fraction of PNG's size.
const QUALITY: u8 = 75;

/// `frame` scaled down (never up) to at most `max_width` pixels wide, as a JPEG. CPU-bound:
/// call it on a blocking thread.
pub(crate) fn encode(frame: &Frame, max_width: u32) -> Result<Vec<u8>, portal_rfb::PreviewError> {
    portal_rfb::jpeg(&frame.rgb, frame.width, frame.height, max_width, QUALITY)
}
