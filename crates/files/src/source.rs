//! Where a new file's bytes come from: a [`Source`] writes its pieces into the file itself, so
//! bytes already in memory (an upload's network buffers) go to the disk as they are, several
//! in one `writev`, without first being copied through a buffer of the writer's.

use std::io::{self, IoSlice, Read, Write};

/// Bytes read per `read` by [`ReadSource`]: one buffer per write in progress.
const READ_BUFFER: usize = 512 * 1024;

/// The bytes of a file being written, piece by piece.
pub trait Source {
    /// Writes the next piece to `out`, all of it, and returns its length; 0 at the end. The
    /// writer checks its limit after each piece, so a piece should stay small (a few MiB):
    /// what goes over the limit is written to the hidden temporary file and removed with it.
    fn write_next(&mut self, out: &mut dyn Write) -> io::Result<u64>;
}

/// A [`Source`] from a reader (a file being copied, bytes in memory), through a buffer.
pub(crate) struct ReadSource<'r> {
    src: &'r mut dyn Read,
    buf: Vec<u8>,
}

impl<'r> ReadSource<'r> {
    pub(crate) fn new(src: &'r mut dyn Read) -> ReadSource<'r> {
        ReadSource {
            src,
            buf: vec![0; READ_BUFFER],
        }
    }
}

impl Source for ReadSource<'_> {
    fn write_next(&mut self, out: &mut dyn Write) -> io::Result<u64> {
        loop {
            match self.src.read(&mut self.buf) {
                Ok(n) => {
                    out.write_all(&self.buf[..n])?;
                    return Ok(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes all of `pieces` to `out` with vectored writes (one `writev` for all of them when the
/// file takes it whole); returns the bytes written.
pub fn write_all_vectored(out: &mut dyn Write, mut pieces: &mut [IoSlice<'_>]) -> io::Result<u64> {
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    // Empty pieces in front would make `write_vectored` return 0, which means a full disk.
    IoSlice::advance_slices(&mut pieces, 0);
    while !pieces.is_empty() {
        match out.write_vectored(pieces) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut pieces, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(total as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A writer that takes at most 3 bytes per call, as a file may under pressure.
    struct Short(Vec<u8>);

    impl Write for Short {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn vectored_writes_go_on_after_short_writes_and_skip_empty_pieces() {
        let mut out = Short(Vec::new());
        let (a, b, c) = (b"Hallo".to_vec(), Vec::new(), " Übung".as_bytes().to_vec());
        let mut pieces = [IoSlice::new(&a), IoSlice::new(&b), IoSlice::new(&c)];
        assert_eq!(write_all_vectored(&mut out, &mut pieces).unwrap(), 12);
        assert_eq!(out.0, "Hallo Übung".as_bytes());
        assert_eq!(write_all_vectored(&mut out, &mut []).unwrap(), 0);
    }

    #[test]
    fn a_reader_is_written_piece_by_piece_until_its_end() {
        let data = vec![7u8; READ_BUFFER + 10];
        let mut reader = data.as_slice();
        let mut src = ReadSource::new(&mut reader);
        let mut out = Vec::new();
        let mut pieces = Vec::new();
        loop {
            let n = src.write_next(&mut out).unwrap();
            if n == 0 {
                break;
            }
            pieces.push(n);
        }
        assert_eq!(pieces, [READ_BUFFER as u64, 10]);
        assert_eq!(out, data);
    }
}
