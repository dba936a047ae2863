//! The desktop's screen as the client last saw it: RGB, 3 bytes per pixel, row by row.

/// A framebuffer whose size was checked against the limits before it was allocated.
#[derive(Clone, Debug)]
pub struct Framebuffer {
    width: u16,
    height: u16,
    rgb: Vec<u8>,
}

impl Framebuffer {
    /// A black screen; the caller has checked the size.
    pub(crate) fn new(width: u16, height: u16) -> Self {
        Self {
            width,
            height,
            rgb: vec![0; usize::from(width) * usize::from(height) * 3],
        }
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    /// `width × height × 3` bytes: red, green, blue per pixel.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// Whether the rectangle lies wholly inside the screen (in `u32`, so no sum overflows).
    pub(crate) fn contains(&self, x: u16, y: u16, w: u16, h: u16) -> bool {
        u32::from(x) + u32::from(w) <= u32::from(self.width) && u32::from(y) + u32::from(h) <= u32::from(self.height)
    }

    /// Writes `pixels` (32-bit little-endian pixels as negotiated: blue, green, red, unused)
    /// at row `y` from column `x`. The caller has checked the rectangle with [`contains`].
    pub(crate) fn put_row(&mut self, x: u16, y: u16, pixels: &[u8]) {
        let start = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 3;
        let n = pixels.len() / 4;
        let Some(row) = self.rgb.get_mut(start..start + n * 3) else {
            return;
        };
        for (dst, src) in row.chunks_exact_mut(3).zip(pixels.chunks_exact(4)) {
            dst[0] = src[2];
            dst[1] = src[1];
            dst[2] = src[0];
        }
    }

    /// CopyRect: the rectangle at (`sx`, `sy`) copied to (`dx`, `dy`); both checked by the
    /// caller. Overlapping copies work: rows are taken in the order that reads each source row
    /// before it is overwritten.
    pub(crate) fn copy_rect(&mut self, sx: u16, sy: u16, dx: u16, dy: u16, w: u16, h: u16) {
        let stride = usize::from(self.width) * 3;
        let len = usize::from(w) * 3;
        let rows: Box<dyn Iterator<Item = u16>> = if dy > sy {
            Box::new((0..h).rev())
        } else {
            Box::new(0..h)
        };
        for r in rows {
            let src = usize::from(sy + r) * stride + usize::from(sx) * 3;
            let dst = usize::from(dy + r) * stride + usize::from(dx) * 3;
            if src + len <= self.rgb.len() && dst + len <= self.rgb.len() {
                self.rgb.copy_within(src..src + len, dst);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_converted_and_copies_may_overlap() {
        let mut fb = Framebuffer::new(4, 3);
        // Blue, green, red, unused → red, green, blue.
        fb.put_row(1, 0, &[3, 2, 1, 0, 6, 5, 4, 0]);
        assert_eq!(&fb.rgb()[3..9], &[1, 2, 3, 4, 5, 6]);
        fb.copy_rect(1, 0, 2, 1, 2, 2);
        assert_eq!(&fb.rgb()[(4 + 2) * 3..(4 + 4) * 3], &[1, 2, 3, 4, 5, 6]);
        assert!(fb.contains(0, 0, 4, 3));
        assert!(!fb.contains(1, 0, 4, 1));
        assert!(!fb.contains(u16::MAX, u16::MAX, u16::MAX, 1));
    }
}
