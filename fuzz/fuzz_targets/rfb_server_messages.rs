//! libFuzzer entry for the `rfb_server_messages` target; the body and its invariants are in
//! `crates/fuzz-targets/src/rfb_server_messages.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::rfb_server_messages::run(data));
