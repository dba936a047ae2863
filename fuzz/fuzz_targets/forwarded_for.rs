//! libFuzzer entry for the `forwarded_for` target; the body and its invariants are in
//! `crates/fuzz-targets/src/forwarded_for.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::forwarded_for::run(data));
