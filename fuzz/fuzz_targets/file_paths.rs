//! libFuzzer entry for the `file_paths` target; the body and its invariants are in
//! `crates/fuzz-targets/src/file_paths.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::file_paths::run(data));
