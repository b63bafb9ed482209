//! libFuzzer target `rules_parse`: the bytes go to `claimdb_fuzz::rules_parse` (input format and invariants there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimdb_fuzz::rules_parse(data));
