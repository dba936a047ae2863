//! The bodies of the fuzz targets: each takes arbitrary bytes, feeds them to one of the
//! portal's parsers and panics when the parser breaks one of its invariants, not only when it
//! panics itself.
//!
//! The same functions run under libFuzzer (`fuzz/`, `scripts/fuzz.sh`) and in the ordinary
//! test suite (`tests/`: every committed corpus and regression file, plus properties), so a
//! stable toolchain checks every invariant on every test run.

pub mod claims;
pub mod config;
pub mod desktop_host;
pub mod desktop_path;
pub mod file_paths;
pub mod forwarded_for;
pub mod request_head;
pub mod rfb_server_messages;

/// A target's body: panics when the input breaks an invariant.
pub type Target = fn(&[u8]);

/// Every target by its name, which is also its folder under `fuzz/corpus/` and
/// `fuzz/regressions/` and its binary in `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("claims", claims::run),
    ("config", config::run),
    ("desktop_host", desktop_host::run),
    ("desktop_path", desktop_path::run),
    ("file_paths", file_paths::run),
    ("forwarded_for", forwarded_for::run),
    ("request_head", request_head::run),
    ("rfb_server_messages", rfb_server_messages::run),
];

/// The input's lines (`\n`, a trailing `\r` removed), at most `n`; the last keeps the rest.
pub(crate) fn lines(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}
