//! One event, one log line: control characters inside a line (a newline in a typed username,
//! a path or a form field) are written escaped, so nobody can forge log lines through the
//! values the portal logs. Applied to the whole formatted line, so every field of every event
//! is covered, whoever wrote the `tracing` call.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Makes writers that escape control characters, around those `inner` makes.
#[derive(Clone, Copy, Debug)]
pub struct EscapedLines<M> {
    inner: M,
    /// Colour codes (ESC) pass, for a person at a terminal; everywhere else they are escaped.
    ansi: bool,
}

impl<M> EscapedLines<M> {
    pub fn new(inner: M, ansi: bool) -> Self {
        Self { inner, ansi }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for EscapedLines<M> {
    type Writer = EscapedWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapedWriter {
            inner: self.inner.make_writer(),
            ansi: self.ansi,
        }
    }
}

/// A writer that escapes control characters except a line's final newline.
pub struct EscapedWriter<W> {
    inner: W,
    ansi: bool,
}

/// `line` (one formatted event) with its control characters escaped; its last newline stays.
pub fn escape_line(line: &str, ansi: bool) -> String {
    let (body, end) = match line.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (line, ""),
    };
    let mut out = String::with_capacity(line.len() + 8);
    for c in body.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            '\u{1b}' if ansi => out.push(c),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out.push_str(end);
    out
}

impl<W: Write> Write for EscapedWriter<W> {
    /// The formatter hands over each event whole, in one call.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner.write_all(escape_line(&text, self.ansi).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what the real formatter writes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_newline_in_a_value_cannot_start_a_forged_line() {
        let sink = Sink::default();
        let out = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(EscapedLines::new(move || sink.clone(), false))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let username = "mallory\n2026-01-01T00:00:00Z  INFO signed in username=root\r";
            tracing::info!(%username, "sign-in failed");
            tracing::info!(group = "a\u{1b}[2Jb", "next");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("mallory\\n2026-01-01T00:00:00Z  INFO signed in username=root\\r"),
            "{text}"
        );
        assert!(lines[1].contains("a\\u{1b}[2Jb"), "{text}");
    }

    #[test]
    fn colour_codes_pass_only_at_a_terminal() {
        assert_eq!(escape_line("\u{1b}[1mx\n", true), "\u{1b}[1mx\n");
        assert_eq!(escape_line("\u{1b}[1mx\n", false), "\\u{1b}[1mx\n");
        assert_eq!(escape_line("a\nb\n", false), "a\\nb\n");
    }
}
