//! Property tests: compiling arbitrary text, or token soup shaped like rules, never panics or
//! overflows; evaluating whatever compiles never panics either.

use claimdb_rules::{NoDocuments, Ruleset};
use proptest::prelude::*;

use crate::request;

const TOKENS: &[&str] = &[
    "rules_version",
    "=",
    "'2'",
    ";",
    "service",
    "cloud.firestore",
    "{",
    "}",
    "match",
    "/",
    "/databases/{database}/documents",
    "/{x}",
    "/{rest=**}",
    "allow",
    "read",
    "write",
    "get",
    ":",
    "if",
    "function",
    "f",
    "(",
    ")",
    "let",
    "return",
    "request",
    ".",
    "auth",
    "uid",
    "resource",
    "data",
    "==",
    "!=",
    "&&",
    "||",
    "!",
    "-",
    "+",
    "*",
    "%",
    "<",
    ">=",
    "in",
    "is",
    "string",
    "?",
    "[",
    "]",
    ",",
    "1",
    "2.5",
    "'s'",
    "b'x'",
    "null",
    "true",
    "$(",
    "x",
    "size",
    "matches",
    "'a*'",
    "get",
    "exists",
    "/databases/$(database)/documents/c/$(x)",
    "//c\n",
    "/*c*/",
    "math.abs",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.join(" "))
}

const PREFIX: &str = "rules_version = '2'; service cloud.firestore { match /databases/{database}/documents { match /c/{x} { allow read, write: if ";

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,300}") {
        let _ = Ruleset::compile(&src);
    }

    #[test]
    fn token_soup_never_panics(src in soup()) {
        let _ = Ruleset::compile(&src);
        let _ = Ruleset::compile(&format!("{PREFIX}{src}; }} }} }}"));
    }

    #[test]
    fn whatever_compiles_evaluates_without_panicking(cond in soup()) {
        if let Ok(rules) = Ruleset::compile(&format!("{PREFIX}{cond}; }} }} }}")) {
            for m in ["get", "create", "delete"] {
                let _ = rules.evaluate(&request(m, "c/doc"), &NoDocuments);
            }
            let _ = rules.evaluate(&request("list", "c"), &NoDocuments);
        }
    }
}
