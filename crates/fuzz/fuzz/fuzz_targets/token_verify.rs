//! libFuzzer target `token_verify`: the bytes go to `claimdb_fuzz::token_verify` (input format and invariants there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimdb_fuzz::token_verify(data));
