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
        "expected an expression",
        4,
    ),
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
    ("match /a/{b} { allow read: true; }", "expected 'if'", 4),
    (
        "match /a/{b} { allow read: if f(); }",
        "unknown function 'f'",
        4,
    ),
    (
        "function f(a) { return a; }\nmatch /a/{b} { allow read: if f(1, 2); }",
        "function 'f' takes 1 argument, given 2",
        5,
    ),
    (
        "match /a/{b} { allow read: if 'x'.frobnicate(); }",
        "unknown method 'frobnicate()'",
        4,
    ),
    (
        "match /a/{b} { allow read: if 'x'.size(1); }",
        "method size() takes 0 arguments",
        4,
    ),
    (
        "match /a/{b} { allow read: if math.nope(1); }",
        "unknown function 'math.nope'",
        4,
    ),
    (
        "match /a/{b} { allow read: if 1 is integer; }",
        "unknown type 'integer'",
        4,
    ),
    (
        "function f() { return g(); }\nfunction g() { return f(); }\nmatch /a/{b} { allow read: if f(); }",
        "recursion is not allowed",
        5,
    ),
    (
        "function f() { return f(); }\nmatch /a/{b} { allow read: if f(); }",
        "recursion is not allowed: f → f",
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
        "function f() { let x = y; let y = 1; return x; }",
        "unknown name 'y'",
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
        "match /a/{b=**}/{c=**} { allow read; }",
        "only one {name=**}",
        4,
    ),
    (
        "match /a/{b} { match /c/{b} { allow read; } }",
        "wildcard 'b' is already bound",
        4,
    ),
    (
        "match /a/{1b} { allow read; }",
        "not a valid wildcard name",
        4,
    ),
    ("match /a/{b=*x} { allow read; }", "not a wildcard form", 4),
    (
        "match a/b { allow read; }",
        "expected a path starting with '/'",
        4,
    ),
    ("match /a/{b { allow read; }", "never closed", 4),
    (
        "match /a/{b} { allow read: if 99999999999999999999; }",
        "out of range",
        4,
    ),
    (
        "match /a/{b} { allow read: if 'unterminated; }",
        "unexpected text",
        4,
    ),
    (
        "match /a/{b} { allow read: if '\\q' == 'x'; }",
        "unknown escape",
        4,
    ),
    (
        "match /a/{b} { allow read: if request.auth.uid = 'x'; }",
        "expected ';'",
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
        "naming a type after 'is'",
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
        "unexpected text",
        4,
    ),
];

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
        ("", "no 'service cloud.firestore"),
        ("service firebase.storage { }", "is not supported"),
        (
            "rules_version = '3'; service cloud.firestore {}",
            "unknown rules_version",
        ),
        ("match /a {}", "expected 'service'"),
        (
            "service cloud.firestore { allow read; }",
            "must be inside a match block",
        ),
        ("service cloud.firestore { match /a/{b { }", "never closed"),
        (
            "service cloud.firestore { match /a/{b} { allow read; }",
            "expected '}'",
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
    let src = wrap("    match /a/{b} {\n      allow read: if request.auth.uid == usr;\n    }");
    let diags = Ruleset::compile(&src).err().unwrap_or_default();
    assert_eq!(diags.len(), 1, "{}", render(&diags));
    let d = &diags[0];
    assert_eq!((d.line, d.column), (5, 42));
    let shown = d.to_string();
    assert!(shown.contains("--> line 5:42"), "{shown}");
    assert!(
        shown.contains("5 |       allow read: if request.auth.uid == usr;"),
        "{shown}"
    );
    assert!(
        shown.ends_with(&format!("{}^^^", " ".repeat(41))),
        "{shown}"
    );
}

#[test]
fn recovers_to_report_several_errors() {
    let src = wrap(
        "    match /a/{b} {\n      allow read: if 1 +;\n      allow write: if nope;\n      allow get: if 'x'.nope();\n    }\n    match /c/{d} { allow red; }",
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
