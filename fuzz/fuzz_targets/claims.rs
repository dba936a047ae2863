//! libFuzzer entry for the `claims` target; the body and its invariants are in
//! `crates/fuzz-targets/src/claims.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::claims::run(data));
