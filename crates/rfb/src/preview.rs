//! Previews of a screen: scaled down with a box filter (each target pixel the average of the
//! source pixels it covers, so small text stays a grey blur instead of flickering noise) and
//! encoded as JPEG, in memory. Here rather than in the portal so that this per-frame work is
//! built optimised even in test builds (see the workspace's profile settings).

use image::codecs::jpeg::JpegEncoder;

/// Why a preview could not be encoded.
pub use image::ImageError as PreviewError;

/// `rgb` (`width × height`, 3 bytes per pixel) as a JPEG at most `max_width` wide (never
/// scaled up) with the given quality (1–100). CPU-bound: run it on a blocking thread.
pub fn jpeg(rgb: &[u8], width: u16, height: u16, max_width: u32, quality: u8) -> Result<Vec<u8>, PreviewError> {
    let (w, h) = (u32::from(width), u32::from(height));
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, quality);
    if w <= max_width {
        encoder.encode(rgb, w, h, image::ExtendedColorType::Rgb8)?;
    } else {
        let (height, small) = scale_down(rgb, w, h, max_width);
        encoder.encode(&small, max_width, height, image::ExtendedColorType::Rgb8)?;
    }
    Ok(out)
}

/// `rgb` (`width × height`, 3 bytes per pixel) scaled to `to_width` pixels wide with the
/// aspect kept (at least 1 pixel high). Returns the new height and the pixels. Never scales
/// up: a screen no wider than `to_width` comes back as it is.
pub fn scale_down(rgb: &[u8], width: u32, height: u32, to_width: u32) -> (u32, Vec<u8>) {
    let (w, h) = (width as usize, height as usize);
    if to_width >= width || to_width == 0 || w == 0 || h == 0 || rgb.len() < w * h * 3 {
        return (height, rgb.to_vec());
    }
    let tw = to_width as usize;
    let th = ((h * tw) / w).max(1);
    let mut out = vec![0u8; tw * th * 3];
    // Column spans per target column, computed once.
    let spans: Vec<(usize, usize)> = (0..tw)
        .map(|x| (x * w / tw, ((x + 1) * w / tw).max(x * w / tw + 1)))
        .collect();
    let mut sums = vec![0u32; tw * 3];
    for ty in 0..th {
        let (y0, y1) = (ty * h / th, ((ty + 1) * h / th).max(ty * h / th + 1));
        sums.iter_mut().for_each(|s| *s = 0);
        for row in rgb[y0 * w * 3..y1 * w * 3].chunks_exact(w * 3) {
            for (tx, &(x0, x1)) in spans.iter().enumerate() {
                let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
                for p in row[x0 * 3..x1 * 3].chunks_exact(3) {
                    r += u32::from(p[0]);
                    g += u32::from(p[1]);
                    b += u32::from(p[2]);
                }
                sums[tx * 3] += r;
                sums[tx * 3 + 1] += g;
                sums[tx * 3 + 2] += b;
            }
        }
        let rows = (y1 - y0) as u32;
        for (tx, &(x0, x1)) in spans.iter().enumerate() {
            let n = rows * (x1 - x0) as u32;
            for c in 0..3 {
                out[(ty * tw + tx) * 3 + c] = (sums[tx * 3 + c] / n) as u8;
            }
        }
    }
    (th as u32, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_filter_averages_and_keeps_the_aspect() {
        // 4×2: left half red, right half blue → 2×1: one red, one blue pixel.
        let mut rgb = Vec::new();
        for _ in 0..2 {
            rgb.extend_from_slice(&[255, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255]);
        }
        assert_eq!(scale_down(&rgb, 4, 2, 2), (1, vec![255, 0, 0, 0, 0, 255]));
        // Half red, half black in one block: the average.
        assert_eq!(scale_down(&[255, 0, 0, 0, 0, 0], 2, 1, 1), (1, vec![127, 0, 0]));
        // Never up.
        assert_eq!(scale_down(&[1, 2, 3], 1, 1, 320), (1, vec![1, 2, 3]));
    }
}
