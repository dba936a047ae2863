//! Screens as JPEG: scaled in memory, never written anywhere.

use image::codecs::jpeg::JpegEncoder;
use image::{ImageBuffer, Rgb, imageops};

use super::Frame;

/// Quality of thumbnails and watched frames: text stays readable at a fraction of PNG's size.
const QUALITY: u8 = 75;

/// `frame` scaled down (never up) to at most `max_width` pixels wide, as a JPEG. CPU-bound:
/// call it on a blocking thread.
pub(crate) fn encode(frame: &Frame, max_width: u32) -> Result<Vec<u8>, image::ImageError> {
    let (w, h) = (u32::from(frame.width), u32::from(frame.height));
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, QUALITY);
    if w <= max_width || w == 0 || h == 0 {
        encoder.encode(&frame.rgb, w, h, image::ExtendedColorType::Rgb8)?;
        return Ok(out);
    }
    let Some(img) = ImageBuffer::<Rgb<u8>, &[u8]>::from_raw(w, h, &frame.rgb[..]) else {
        return Err(image::ImageError::Parameter(image::error::ParameterError::from_kind(
            image::error::ParameterErrorKind::DimensionMismatch,
        )));
    };
    let height = (u64::from(h) * u64::from(max_width) / u64::from(w)).max(1) as u32;
    // `thumbnail` averages the covered area: fast, and sharp enough for small text.
    let small = imageops::thumbnail(&img, max_width, height);
    encoder.encode_image(&small)?;
    Ok(out)
}
