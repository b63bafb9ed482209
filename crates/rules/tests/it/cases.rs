//! The example rule sets under the repository's examples/, each with its case file in the format of
//! `claimdb rules test`, run through the library's case runner.

use claimdb_rules::{Ruleset, TestCase, render_report, run_cases};

const EXAMPLES: &[&str] = &["movies", "owner", "roles", "profile-fields", "members"];

fn load(name: &str) -> (Ruleset, Vec<TestCase>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let src = std::fs::read_to_string(format!("{dir}/{name}.rules")).unwrap();
    let rules =
        Ruleset::compile(&src).unwrap_or_else(|d| panic!("{name}: {}", claimdb_rules::render(&d)));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}.cases.json")).unwrap())
            .unwrap();
    (
        rules,
        TestCase::all_from_json(&json).unwrap_or_else(|e| panic!("{name}: {e}")),
    )
}

#[test]
fn every_example_case_passes_and_every_allow_is_exercised() {
    for name in EXAMPLES {
        let (rules, cases) = load(name);
        let (outcomes, coverage) = run_cases(&rules, &cases);
        for o in &outcomes {
            assert!(
                o.passed,
                "{name}: {:?} expected allow={} — {}",
                o.name, o.expect_allow, o.explanation
            );
            assert_eq!(
                o.explanation.is_empty(),
                o.decision.allowed,
                "{name}: {}",
                o.name
            );
        }
        for line in coverage.report() {
            assert!(
                line.ever_true || line.ever_false,
                "{name}: allow at line {} never evaluated",
                line.allow.line
            );
        }
    }
}

#[test]
fn a_failing_case_is_reported_with_its_explanation() {
    let (rules, mut cases) = load("movies");
    cases[3].expect_allow = true; // "user may not create"
    let (outcomes, coverage) = run_cases(&rules, &cases);
    let (text, all_passed) = render_report(&outcomes, &coverage);
    assert!(!all_passed);
    assert!(
        text.contains("FAIL  user may not create — expected allow, was denied"),
        "{text}"
    );
    assert!(text.contains("6 passed, 1 failed"), "{text}");
    assert!(text.contains("line    7  allow write: request.auth != null && request.auth.token.moderator == true  — true and false"), "{text}");
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed).collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]
            .explanation
            .contains("`request.auth.token.moderator` is not set in the token"),
        "{}",
        failed[0].explanation
    );
}

#[test]
fn malformed_cases_are_refused_with_their_name() {
    let table = [
        (
            r#"{"name": "x", "method": "fetch", "path": "a/b", "expect": "allow"}"#,
            "method must be",
        ),
        (
            r#"{"name": "x", "method": "get", "expect": "allow"}"#,
            "path is required",
        ),
        (
            r#"{"name": "x", "method": "get", "path": "a/b", "expect": "maybe"}"#,
            "expect must be allow or deny",
        ),
        (
            r#"{"name": "x", "method": "list", "path": "a", "query": {"where": [["f", "~", 1]]}, "expect": "deny"}"#,
            "unknown query operator",
        ),
        (
            r#"{"name": "x", "method": "get", "path": "a/b", "auth": {"token": {}}, "expect": "deny"}"#,
            "auth.uid",
        ),
        (
            r#"{"name": "x", "method": "get", "path": "a/b", "existing": {"a": {}}, "expect": "deny"}"#,
            "names a collection",
        ),
    ];
    for (json, want) in table {
        let err = TestCase::from_json(&serde_json::from_str(json).unwrap()).unwrap_err();
        assert!(
            err.contains(want) && err.contains("case \"x\""),
            "{json}: {err}"
        );
    }
}
