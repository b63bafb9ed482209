//! Compile errors: each case is a rules file and the message fragment and line expected, plus
//! the rendering (line:column, source line, caret) and recovery to several errors in one run.

use claimdb_rules::{Ruleset, render};

fn wrap(body: &str) -> String {
    format!(
        "rules_version = '2';\nservice cloud.firestore {{\n  match /databases/{{database}}/documents {{\n{body}\n  }}\n}}\n"
    )
}

const CASES: &[(&str, &str, usize)] = &[
    (
        "match /a/{b} { allow read: if ; }",
        "expected a condition after 'if'",
        4,
    ),
    ("match /a/{b} { allow read: true; }", "expected 'if'", 4),
    (
        "match /a/{b} { allow read if true; }",
        "expected ':' before 'if'",
        4,
    ),
    (
        "match /a/{b} { allow read: if 1 is integer; }",
        "unknown type 'integer'",
        4,
    ),
    (
        "function f() { return g(); }\nfunction g() { return f(); }\nmatch /a/{b} { allow read: if f(); }",
        "recursion is not allowed: f → g",
        4,
    ),
    (
        "function f() { return f(); }\nmatch /a/{b} { allow read: if f(); }",
        "recursion is not allowed: f calls itself",
        4,
    ),
    (
        "function f(a, b, c, d, e, f2, g, h) { return true; }",
        "8 parameters; the limit is 7",
        4,
    ),
    (
        "function f(a, a) { return true; }",
        "parameter 'a' is declared twice",
        4,
    ),
    (
        "function f() { let a = 1; let a = 2; return a; }",
        "already defined",
        4,
    ),
    (
        "function f() { return 1; }\nfunction f() { return 2; }",
        "declared twice",
        5,
    ),
    (
        "match /a/{b} { allow read: if 'abc'.matches('('); }",
        "invalid regular expression",
        4,
    ),
    (
        "match /a/{b} { allow read: if 'abc'.split('a**').size() > 0; }",
        "invalid regular expression",
        4,
    ),
    (
        "match /a/{b=**}/{c=**} { allow read; }",
        "only one {name=**}",
        4,
    ),
    (
        "match /a/{b=**} { match /c/{d=**} { allow read; } }",
        "only one {name=**}",
        4,
    ),
    (
        "match /a/{b}/{b} { allow read; }",
        "wildcard 'b' appears twice",
        4,
    ),
    (
        "match /a/{1b} { allow read; }",
        "must be followed by a name or a {wildcard}",
        4,
    ),
    (
        "match /a/{b=*x} { allow read; }",
        "must be followed by a name or a {wildcard}",
        4,
    ),
    (
        "match a/b { allow read; }",
        "expected a path starting with '/'",
        4,
    ),
    (
        "match /a/{b} {}",
        "must contain at least one declaration",
        4,
    ),
    (
        "match /a/{b} { allow read: if 99999999999999999999; }",
        "does not fit in a 64-bit integer",
        4,
    ),
    (
        "match /a/{b} { allow read: if 'unterminated; }",
        "close it on the same line",
        4,
    ),
    (
        "match /a/{b} { allow read: if '\\q' == 'x'; }",
        "unknown escape",
        4,
    ),
    (
        "match /a/{b} { allow read: if request.auth.uid = 'x'; }",
        "use '==' to compare",
        4,
    ),
    (
        "match /a/{b} { allow read: if (1 + 2; }",
        "to close the parenthesis",
        4,
    ),
    (
        "match /a/{b} { allow read: if [1, 2; }",
        "to close the list",
        4,
    ),
    (
        "match /a/{b} { allow read: if true ? 1; }",
        "in the conditional expression",
        4,
    ),
    (
        "match /a/{b} { allow read: if math; }",
        "is a namespace of functions",
        4,
    ),
    (
        "match /a/{b} { allow read: if 1 is; }",
        "expected a type name after 'is'",
        4,
    ),
    (
        "function f() { let x = 1; }",
        "expected 'let' or 'return'",
        4,
    ),
    (
        "match /a/{b} { garbage }",
        "expected 'match', 'allow' or 'function'",
        4,
    ),
    (
        "match /a/{b} { allow read: if true; } /* never closed",
        "never closed",
        4,
    ),
    (
        "match /a/{b} { allow read: if 4/2 == 2; }",
        "a '/' directly followed by a name is a path segment",
        4,
    ),
    (
        "match /a/{b} { allow read: if 1e3 > 0; }",
        "expected 'match', 'allow' or 'function', found 'e3'",
        4,
    ),
    (
        "match /a/{b} { allow read: if 'abc'[1:] == 'bc'; }",
        "expected an expression",
        4,
    ),
    (
        "match /a/{b} { allow read: if --1 == 1; }",
        "there are no increment or decrement operators",
        4,
    ),
    (
        "match /a/{b} { allow read: if let == 1; }",
        "expected a condition after 'if', found 'let'",
        4,
    ),
    (
        "match /a/{b} { allow read: if \u{e9} == 1; }",
        "unexpected character",
        4,
    ),
];

/// What Firebase only warns about compiles, with a warning at the place; the rule fails where
/// it is evaluated.
const WARNINGS: &[(&str, &str, usize)] = &[
    (
        "match /a/{b} { allow read: if x == 1; }",
        "unknown name 'x'",
        4,
    ),
    (
        "match /a/{b} { allow red: if true; }",
        "unknown method 'red'",
        4,
    ),
    (
        "match /a/{b} { allow read: if f(); }",
        "unknown function f()",
        4,
    ),
    (
        "function f(a) { return a; }\nmatch /a/{b} { allow read: if f(1, 2); }",
        "function f() takes 1 argument, given 2",
        5,
    ),
    (
        "match /a/{b} { allow read: if 'x'.frobnicate(); }",
        "no value has a method frobnicate()",
        4,
    ),
    (
        "match /a/{b} { allow read: if math.nope(1); }",
        "there is no function math.nope()",
        4,
    ),
    (
        "function f() { let x = y; let y = 1; return x; }",
        "unknown name 'y'",
        4,
    ),
    (
        "function isOwner() { return userId == request.auth.uid; }\nmatch /users/{userId} { allow read: if isOwner(); }",
        "unknown name 'userId'",
        4,
    ),
];

#[test]
fn warnings_compile_and_point_at_the_place() {
    let mut failures = Vec::new();
    for (body, fragment, line) in WARNINGS {
        match Ruleset::compile(&wrap(body)) {
            Err(diags) => failures.push(format!("{body}: refused\n{}", render(&diags))),
            Ok(rules) => {
                if !rules
                    .warnings()
                    .iter()
                    .any(|d| d.message.contains(fragment) && d.line == *line)
                {
                    failures.push(format!(
                        "{body}: want warning {fragment:?} at line {line}, got {:?}",
                        rules.warnings()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn diagnostic_table() {
    let mut failures = Vec::new();
    for (body, fragment, line) in CASES {
        let src = wrap(body);
        match Ruleset::compile(&src) {
            Ok(_) => failures.push(format!("{body}: compiled, expected {fragment:?}")),
            Err(diags) => {
                if !diags
                    .iter()
                    .any(|d| d.message.contains(fragment) && d.line == *line)
                {
                    failures.push(format!(
                        "{body}: want {fragment:?} at line {line}, got\n{}",
                        render(&diags)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn whole_file_errors() {
    let table: &[(&str, &str)] = &[
        ("", "the rules file is empty"),
        (
            "service firebase.storage { }",
            "must contain at least one declaration",
        ),
        (
            "rules_version = '3'; service cloud.firestore { match /a/{b} { allow read; } }",
            "unsupported rules_version",
        ),
        ("match /a {}", "expected 'service' or 'function'"),
        (
            "service cloud.firestore { allow read; }",
            "must be inside a match block",
        ),
        (
            "service cloud.firestore { match /a/{b { }",
            "must be followed by a name or a {wildcard}",
        ),
        (
            "service cloud.firestore { match /a/{b} { allow read; }",
            "expected '}'",
        ),
        (
            "service cloud.firestore { match /a/{b} { allow read; } }\nservice cloud.firestore { match /c/{d} { allow read; } }",
            "declared twice",
        ),
        (
            "rules_version = '1'; service cloud.firestore { function f() { let a = 1; return a; } match /a/{b} { allow read: if f() == 1; } }",
            "let bindings need rules_version = '2'",
        ),
        (
            "service cloud.firestore { match /a/{b=**}/c { allow read; } }",
            "must be the last segment",
        ),
    ];
    for (src, fragment) in table {
        let diags = Ruleset::compile(src).err().unwrap_or_default();
        assert!(
            diags.iter().any(|d| d.message.contains(fragment)),
            "{src}: {}",
            render(&diags)
        );
    }
}

#[test]
fn errors_show_line_column_source_and_caret() {
    let src = wrap("    match /a/{b} {\n      allow read: if request.auth.uid == 'x' 'y';\n    }");
    let diags = Ruleset::compile(&src).err().unwrap_or_default();
    assert_eq!(diags.len(), 1, "{}", render(&diags));
    let d = &diags[0];
    assert_eq!((d.line, d.column), (5, 46));
    let shown = d.to_string();
    assert!(shown.contains("--> line 5:46"), "{shown}");
    assert!(
        shown.contains("5 |       allow read: if request.auth.uid == 'x' 'y';"),
        "{shown}"
    );
    assert!(
        shown.ends_with(&format!("{}^^^", " ".repeat(45))),
        "{shown}"
    );
    // A warning renders the same way.
    let rules = Ruleset::compile(&wrap(
        "    match /a/{b} {\n      allow read: if request.auth.uid == usr;\n    }",
    ))
    .unwrap_or_else(|d| panic!("{}", render(&d)));
    let shown = claimdb_rules::render_warnings(rules.warnings());
    assert!(shown.starts_with("warning: unknown name 'usr'"), "{shown}");
    assert!(shown.contains("--> line 5:42"), "{shown}");
}

#[test]
fn recovers_to_report_several_errors() {
    let src = wrap(
        "    match /a/{b} {\n      allow read: if 1 +;\n      allow write: if nope;\n      allow get: if 'x'.nope();\n    }\n    match /c/{d} { allow red: if true true; }",
    );
    let diags = Ruleset::compile(&src).err().unwrap_or_default();
    let lines: Vec<usize> = diags.iter().map(|d| d.line).collect();
    assert!(diags.len() >= 2, "{}", render(&diags));
    assert!(
        lines.contains(&5) && lines.contains(&9),
        "{lines:?}\n{}",
        render(&diags)
    );
}
