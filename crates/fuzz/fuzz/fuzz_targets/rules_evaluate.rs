//! libFuzzer target `rules_evaluate`: the bytes go to `claimdb_fuzz::rules_evaluate` (input format and invariants there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimdb_fuzz::rules_evaluate(data));
