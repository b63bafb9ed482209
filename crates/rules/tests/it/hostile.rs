//! Hostile rules files and requests: each is bounded with a clear error — never a stack
//! overflow, hang or panic. These run on the default 2 MiB test-thread stack in debug builds.

use claimdb_rules::{NoDocuments, Ruleset, render};

use crate::request;

fn wrap(cond: &str) -> String {
    format!(
        "rules_version = '2';\nservice cloud.firestore {{ match /databases/{{database}}/documents {{\n match /c/{{d}} {{ allow get: if {cond}; }}\n}} }}"
    )
}

fn compile_err(src: &str) -> String {
    match Ruleset::compile(src) {
        Ok(_) => String::from("<compiled>"),
        Err(d) => render(&d),
    }
}

#[test]
fn deep_brackets_are_refused() {
    for (open, close) in [("(", ")"), ("[", "]"), ("{'a': ", "}")] {
        let cond = format!("{}1{}", open.repeat(20_000), close.repeat(20_000));
        let msg = compile_err(&wrap(&cond));
        assert!(msg.contains("expression is too complex"), "{open}: {msg}");
    }
}

#[test]
fn long_unary_and_operator_chains_are_refused() {
    let msg = compile_err(&wrap(&format!("{}true", "!".repeat(100_000))));
    assert!(msg.contains("expression is too complex"), "{msg}");
    let chain = vec!["request.method == 'get'"; 5_000].join(" && ");
    let msg = compile_err(&wrap(&chain));
    assert!(msg.contains("expression is too complex"), "{msg}");
    let members = format!("request{}", ".a".repeat(20_000));
    let msg = compile_err(&wrap(&members));
    assert!(msg.contains("more than 2000 accesses in a row"), "{msg}");
}

/// Firebase refuses an expression nested 99 levels deep; a chain of 97 `&&` (98 operands, the
/// first 98 levels down) compiles and evaluates.
#[test]
fn a_chain_just_under_the_height_limit_evaluates() {
    let chain = vec!["request.method == 'get'"; 98].join(" && ");
    let rules = Ruleset::compile(&wrap(&chain)).unwrap_or_else(|d| panic!("{}", render(&d)));
    let d = rules.evaluate(&request("get", "c/x"), &NoDocuments);
    assert!(d.allowed, "{d:?}");
}

#[test]
fn huge_files_are_refused_before_parsing() {
    let src = format!("{}\n{}", wrap("true"), "// padding\n".repeat(30_000));
    let msg = compile_err(&src);
    assert!(msg.contains("the limit is 262144 bytes"), "{msg}");
}

/// A huge literal compiles (and is folded once); evaluating it counts one expression per
/// item, as in Firebase, so a list of 25,000 goes past the 1,000-expression limit.
#[test]
fn huge_list_literals_compile_and_evaluate() {
    let list = vec!["'x'"; 25_000].join(",");
    let rules = Ruleset::compile(&wrap(&format!(
        "'y' in [{list}] || request.method in [{list}, 'get']"
    )))
    .unwrap_or_else(|d| panic!("{}", render(&d)));
    let d = rules.evaluate(&request("get", "c/x"), &NoDocuments);
    assert!(!d.allowed, "{:?}", d.tried);
    assert!(
        d.limit
            .as_deref()
            .is_some_and(|l| l.contains("more than 1000 expressions")),
        "{d:?}"
    );
    let short = vec!["'x'"; 900].join(",");
    let rules = Ruleset::compile(&wrap(&format!("request.method in [{short}, 'get']")))
        .unwrap_or_else(|d| panic!("{}", render(&d)));
    assert!(rules.evaluate(&request("get", "c/x"), &NoDocuments).allowed);
}

#[test]
fn the_expression_budget_denies_with_a_limit() {
    let chain = vec!["request.method == 'get'"; 90].join(" && ");
    let src = format!(
        "rules_version = '2';\nservice cloud.firestore {{ match /databases/{{database}}/documents {{\n function f() {{ return {chain}; }}\n match /c/{{d}} {{ allow get: if f() && f() && f() && f(); allow get: if true; }}\n}} }}"
    );
    let rules = Ruleset::compile(&src).unwrap_or_else(|d| panic!("{}", render(&d)));
    let d = rules.evaluate(&request("get", "c/x"), &NoDocuments);
    assert!(
        !d.allowed,
        "a limit denies the whole request even if a later allow would grant"
    );
    assert!(
        d.limit
            .as_deref()
            .is_some_and(|l| l.contains("more than 1000 expressions")),
        "{d:?}"
    );
}

/// Firebase refuses a chain of more than 21 functions when it compiles, and a call nested
/// deeper than 20 when it evaluates.
#[test]
fn call_chains_deeper_than_twenty_are_refused() {
    let chain = |n: usize| {
        let mut fns = String::new();
        for i in 0..n - 1 {
            fns.push_str(&format!("function f{i}() {{ return f{}(); }}\n", i + 1));
        }
        fns.push_str(&format!("function f{}() {{ return true; }}\n", n - 1));
        format!(
            "rules_version = '2';\nservice cloud.firestore {{ match /databases/{{database}}/documents {{\n{fns} match /c/{{d}} {{ allow get: if f0(); }}\n}} }}"
        )
    };
    let msg = compile_err(&chain(22));
    assert!(msg.contains("more than 21 functions"), "{msg}");
    let allowed = |n: usize| {
        let rules = Ruleset::compile(&chain(n)).unwrap_or_else(|d| panic!("{}", render(&d)));
        rules.evaluate(&request("get", "c/x"), &NoDocuments).allowed
    };
    assert!(allowed(20));
    assert!(!allowed(21), "compiles, but the 21st call is one too deep");
}

#[test]
fn match_nesting_and_captures_are_bounded() {
    let mut src = String::from("service cloud.firestore { match /databases/{database}/documents {");
    for i in 0..11 {
        src.push_str(&format!(" match /c{i}/{{d{i}}} {{"));
    }
    src.push_str(" allow read;");
    src.push_str(&"}".repeat(13));
    let msg = compile_err(&src);
    assert!(msg.contains("match blocks nest deeper than 11"), "{msg}");
    let pattern: String = (0..22).map(|i| format!("/{{w{i}}}")).collect();
    let src = format!(
        "service cloud.firestore {{ match /databases/{{database}}/documents {{ match {pattern} {{ allow read; }} }} }}"
    );
    let msg = compile_err(&src);
    assert!(msg.contains("more than 20 wildcards"), "{msg}");
}

#[test]
fn pathological_regexes_are_linear_or_refused() {
    let subject = "a".repeat(50_000);
    let cond = format!("'{subject}'.matches('(a*)*b') == false && '{subject}'.matches('(a|aa)+$')");
    let rules = Ruleset::compile(&wrap(&cond)).unwrap_or_else(|d| panic!("{}", render(&d)));
    let started = std::time::Instant::now();
    assert!(rules.evaluate(&request("get", "c/x"), &NoDocuments).allowed);
    assert!(
        started.elapsed().as_secs() < 10,
        "regex matching must be linear"
    );
    let msg = compile_err(&wrap("'a'.matches('(((a{100}){100}){100})')"));
    assert!(msg.contains("invalid regular expression"), "{msg}");
    // Firebase compiles a long pattern; claimdb bounds what it compiles at run time.
    let rules = Ruleset::compile(&wrap(&format!("'a'.matches('{}')", "a".repeat(5_000))))
        .unwrap_or_else(|d| panic!("{}", render(&d)));
    let d = rules.evaluate(&request("get", "c/x"), &NoDocuments);
    assert!(!d.allowed);
    assert!(
        format!("{:?}", d.tried).contains("the limit is 4096"),
        "{:?}",
        d.tried
    );
}

#[test]
fn dynamic_regexes_are_bounded_per_request() {
    let terms: Vec<String> = (0..20)
        .map(|i| format!("'x'.matches(request.method + '{i}')"))
        .collect();
    let rules =
        Ruleset::compile(&wrap(&terms.join(" || "))).unwrap_or_else(|d| panic!("{}", render(&d)));
    let d = rules.evaluate(&request("get", "c/x"), &NoDocuments);
    assert!(!d.allowed);
    assert!(
        d.limit
            .as_deref()
            .is_some_and(|l| l.contains("distinct regular expressions")),
        "{d:?}"
    );
}

fn big_request() -> claimdb_rules::Request {
    let items: Vec<serde_json::Value> = (0..100_000)
        .map(|i| serde_json::json!(format!("v{i}")))
        .collect();
    let mut r = request("create", "c/x");
    r.incoming = Some(crate::doc(
        serde_json::json!({"a": items.clone(), "b": items, "s": "x".repeat(1 << 20)}),
    ));
    r
}

#[test]
fn large_client_lists_are_compared_in_n_log_n() {
    let cond = "request.resource.data.a.hasAll(request.resource.data.b) && request.resource.data.b.hasOnly(request.resource.data.a) && request.resource.data.a.removeAll(request.resource.data.b).size() == 0";
    let src = wrap(cond).replace("allow get", "allow create");
    let rules = Ruleset::compile(&src).unwrap_or_else(|d| panic!("{}", render(&d)));
    let started = std::time::Instant::now();
    let d = rules.evaluate(&big_request(), &NoDocuments);
    assert!(d.allowed, "{:?}", d.tried);
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn computed_values_are_bounded_in_size() {
    let src = "rules_version = '2';\nservice cloud.firestore { match /databases/{database}/documents {\n function grow(s) { let a = s + s; let b = a + a; let c = b + b; return c + c; }\n match /c/{d} { allow create: if grow(request.resource.data.s).size() > 0; allow create: if request.resource.data.a.concat(request.resource.data.b) == []; allow create: if request.resource.data.s.replace('', 'yyyy').size() > 0; }\n} }";
    let rules = Ruleset::compile(src).unwrap_or_else(|d| panic!("{}", render(&d)));
    let d = rules.evaluate(&big_request(), &NoDocuments);
    assert!(!d.allowed);
    assert!(
        d.limit
            .as_deref()
            .is_some_and(|l| l.contains("the limit is 2097152")),
        "{d:?}"
    );
    let list_only = src.replace("grow(request.resource.data.s).size() > 0", "false");
    let rules = Ruleset::compile(&list_only).unwrap_or_else(|d| panic!("{}", render(&d)));
    let d = rules.evaluate(&big_request(), &NoDocuments);
    assert!(
        d.limit
            .as_deref()
            .is_some_and(|l| l.contains("the limit is 100000")),
        "{d:?}"
    );
}

/// Rules that nest through 19 function calls (each body ~`terms` operations deep) ending in a
/// comparison that is false.
fn deep_calls(terms: usize) -> String {
    let mut fns = String::new();
    for i in 0..19 {
        let chain = vec!["request.method == 'get'"; terms].join(" && ");
        fns.push_str(&format!(
            "function f{i}() {{ return f{}() && {chain}; }}\n",
            i + 1
        ));
    }
    fns.push_str("function f19() { return request.method == 'list'; }\n");
    format!(
        "rules_version = '2';\nservice cloud.firestore {{ match /databases/{{database}}/documents {{\n{fns} match /c/{{d}} {{ allow get: if f0(); }}\n}} }}"
    )
}

/// The native stack stays bounded whatever the rules: compiling, evaluating and explaining the
/// deepest rules the limits allow fits in 1 MiB even in debug builds (about 0.75 MiB measured;
/// std and tokio threads get 2 MiB).
#[test]
fn deepest_rules_fit_in_a_small_stack() {
    let run = || {
        let too_deep =
            Ruleset::compile(&deep_calls(30)).unwrap_or_else(|d| panic!("{}", render(&d)));
        let d = too_deep.explain(&request("get", "c/x"), &NoDocuments);
        assert!(!d.allowed);
        assert!(
            d.limit
                .as_deref()
                .is_some_and(|l| l.contains("nest more than 400 deep")),
            "{d:?}"
        );
        let deep = Ruleset::compile(&deep_calls(18)).unwrap_or_else(|d| panic!("{}", render(&d)));
        let d = deep.explain(&request("get", "c/x"), &NoDocuments);
        assert!(!d.allowed && d.limit.is_none(), "{d:?}");
        assert!(
            d.reasons
                .iter()
                .any(|r| r.message.contains("request.method")),
            "{:?}",
            d.reasons
        );
        let brackets = format!("{}1{}", "(".repeat(90), ")".repeat(90));
        let chain = vec!["request.method == 'get'"; 97].join(" && ");
        let _ = Ruleset::compile(&wrap(&format!("{brackets} == 1 && {chain}")));
    };
    let outcome = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(run)
        .map(|h| h.join());
    assert!(matches!(outcome, Ok(Ok(()))), "ran out of stack or failed");
}

/// Rules version 1 lets `{name=**}` matches nest (version 2 allows one along a path).
#[test]
fn nested_recursive_wildcards_cannot_explode() {
    let mut src = String::from("service cloud.firestore { match /databases/{database}/documents {");
    for i in 0..8 {
        src.push_str(&format!(" match /{{w{i}=**}} {{"));
    }
    src.push_str(" match /never/{x} { allow read; }");
    src.push_str(&"}".repeat(10));
    let rules = Ruleset::compile(&src).unwrap_or_else(|d| panic!("{}", render(&d)));
    let path = vec!["a/b"; 50].join("/");
    let started = std::time::Instant::now();
    let d = rules.evaluate(&request("get", &path), &NoDocuments);
    assert!(!d.allowed);
    assert!(
        d.limit
            .as_deref()
            .is_some_and(|l| l.contains("more than 10000")),
        "{:?}",
        d.limit
    );
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn a_maximal_file_of_many_rules_compiles_quickly() {
    let block = "    match /c/{d} { allow read: if request.auth != null; }\n";
    let n = (claimdb_rules::MAX_SOURCE_BYTES - 200) / block.len();
    let src = format!(
        "rules_version = '2';\nservice cloud.firestore {{ match /databases/{{database}}/documents {{\n{}}} }}\n",
        block.repeat(n)
    );
    assert!(src.len() <= claimdb_rules::MAX_SOURCE_BYTES);
    let started = std::time::Instant::now();
    let rules = Ruleset::compile(&src).unwrap_or_else(|d| panic!("{}", render(&d)));
    assert_eq!(rules.allow_statements().len(), n);
    assert_eq!(rules.allow_statements()[n - 1].line, n + 2);
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}
