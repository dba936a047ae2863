//! libFuzzer entry for the `request_head` target; the body and its invariants are in
//! `crates/fuzz-targets/src/request_head.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::request_head::run(data));
