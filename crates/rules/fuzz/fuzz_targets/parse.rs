//! Fuzzes the whole front end (lexer, parser, checker, compiler) with arbitrary bytes: compiling
//! must return a ruleset or diagnostics, never panic, hang or overflow the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        if let Err(diags) = claimdb_rules::Ruleset::compile(src) {
            // Rendering touches every span; it must be safe for any diagnostic.
            let _ = claimdb_rules::render(&diags);
        }
    }
});
