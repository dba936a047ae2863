//! libFuzzer entry for the `desktop_host` target; the body and its invariants are in
//! `crates/fuzz-targets/src/desktop_host.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::desktop_host::run(data));
