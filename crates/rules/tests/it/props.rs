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

fn value_of(expr: &str) -> Result<String, String> {
    Ruleset::evaluate_expression("", expr, &request("get", "c/doc"), &NoDocuments)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Integer arithmetic matches checked 64-bit arithmetic; overflow and division by zero are
    /// errors, never wrapped values or panics.
    #[test]
    fn integer_arithmetic_is_checked(a in any::<i64>(), b in any::<i64>()) {
        let lit = |x: i64| if x < 0 { format!("({x})") } else { x.to_string() };
        for (op, want) in [
            ("+", a.checked_add(b)),
            ("-", a.checked_sub(b)),
            ("*", a.checked_mul(b)),
            ("/", a.checked_div(b)),
            ("%", a.checked_rem(b)),
        ] {
            let got = value_of(&format!("{} {op} {}", lit(a), lit(b)));
            match want {
                Some(v) => prop_assert_eq!(got, Ok(v.to_string())),
                None => prop_assert!(got.is_err()),
            }
        }
        prop_assert_eq!(value_of(&format!("{} < {}", lit(a), lit(b))), Ok((a < b).to_string()));
        prop_assert_eq!(value_of(&format!("{} == {}", lit(a), lit(b))), Ok((a == b).to_string()));
    }

    /// Int/float comparison is exact, even where an i64 does not fit in an f64.
    #[test]
    fn int_float_comparison_is_exact(a in any::<i64>(), delta in -3i64..3) {
        // As in Java (the emulator's), an int compares with a float as the nearest double.
        let f = a as f64;
        let lit = if a < 0 { format!("({a})") } else { a.to_string() };
        let flit = format!("{f:.1}");
        let flit = if f < 0.0 { format!("({flit})") } else { flit };
        prop_assert_eq!(value_of(&format!("{lit} < {flit}")), Ok("false".to_string()));
        prop_assert_eq!(value_of(&format!("{lit} == {flit}")), Ok("true".to_string()));
        let b = a.saturating_add(delta);
        let blit = if b < 0 { format!("({b})") } else { b.to_string() };
        prop_assert_eq!(value_of(&format!("[{lit}, {blit}, {lit}].toSet().size()")), Ok(if a == b { "1" } else { "2" }.to_string()));
    }

    /// String size counts UTF-16 units (here one per character) and slices never panic: the
    /// start must be an index of the string, and so must the position before the end.
    #[test]
    fn string_size_and_slices(s in "[a-zé€ ]{0,20}", i in 0usize..25, j in 0usize..25) {
        let n = s.chars().count();
        prop_assert_eq!(value_of(&format!("'{s}'.size()")), Ok(n.to_string()));
        let got = value_of(&format!("'{s}'[{i}:{j}]"));
        if i < n && j >= 1 && j <= n && i <= j {
            let want: String = s.chars().skip(i).take(j - i).collect();
            prop_assert_eq!(got, Ok(format!("{want:?}")));
        } else {
            prop_assert!(got.is_err());
        }
    }
}

/// A small random expression over constants, as (folded text, run-time text): the second wraps
/// every literal in `id(…)`, a user function, which the compiler never folds.
fn expr_pair() -> impl Strategy<Value = (String, String)> {
    let leaf = prop_oneof![
        (-5i64..5).prop_map(|i| i.to_string()),
        prop::sample::select(vec![
            "0.5", "2.0", "-1.5", "'a'", "'bc'", "true", "false", "null", "[1, 'a']", "{'k': 1}"
        ])
        .prop_map(str::to_string),
    ]
    .prop_map(|lit| {
        let wrapped = format!("id({lit})");
        (lit, wrapped)
    });
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+", "-", "*", "/", "%", "==", "!=", "<", ">=", "&&", "||", "in"
                ]),
                inner.clone()
            )
                .prop_map(|((a, wa), op, (b, wb))| (
                    format!("({a} {op} {b})"),
                    format!("({wa} {op} {wb})")
                )),
            inner
                .clone()
                .prop_map(|(a, wa)| (format!("!({a})"), format!("!({wa})"))),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(
                |((c, wc), (a, wa), (b, wb))| {
                    (
                        format!("({c} ? {a} : {b})"),
                        format!("({wc} ? {wa} : {wb})"),
                    )
                }
            ),
            inner
                .clone()
                .prop_map(|(a, wa)| (format!("[{a}].size()"), format!("[{wa}].size()"))),
            inner.prop_map(|(a, wa)| (format!("string({a})"), format!("string({wa})"))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Constant folding never changes a value or an error.
    #[test]
    fn folding_agrees_with_run_time_evaluation((folded, runtime) in expr_pair()) {
        let r = request("get", "c/doc");
        let a = Ruleset::evaluate_expression("", &folded, &r, &NoDocuments);
        let b = Ruleset::evaluate_expression("function id(x) { return x; }", &runtime, &r, &NoDocuments);
        prop_assert_eq!(a, b, "{} vs {}", folded, runtime);
    }
}
