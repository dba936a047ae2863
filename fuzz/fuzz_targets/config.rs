//! libFuzzer entry for the `config` target; the body and its invariants are in
//! `crates/fuzz-targets/src/config.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::config::run(data));
