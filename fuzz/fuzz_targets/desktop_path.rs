//! libFuzzer entry for the `desktop_path` target; the body and its invariants are in
//! `crates/fuzz-targets/src/desktop_path.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::desktop_path::run(data));
