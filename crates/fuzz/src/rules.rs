//! The rules targets. `rules_parse` feeds arbitrary text to the whole front end (lexer, parser,
//! checker, compiler, diagnostics rendering). `rules_evaluate` compiles a condition spliced into
//! a fixed rules file (or a whole rules file, when the input is one) and decides every kind of
//! request against documents holding every value type, with and without explanations.

use std::collections::HashMap;

use claimdb_model::{CollectionPath, DocPath, Map, Timestamp, Value};
use claimdb_rules::{Filter, FilterOp, Method, Query, Request, Ruleset, Target};

/// Compiling must return a ruleset or diagnostics — never panic, hang or overflow the stack —
/// and rendering the diagnostics must be safe for every span.
pub fn rules_parse(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match Ruleset::compile(src) {
        Ok(rules) => {
            let _ = rules.source();
        }
        Err(diags) => {
            let text = claimdb_rules::render(&diags);
            assert!(!text.is_empty(), "diagnostics rendered to nothing");
        }
    }
}

/// Separates the condition (or rules file) from an optional JSON document that becomes the
/// stored and incoming data: `cond\n%%\n{"a": 1}`.
const DOC_SEPARATOR: &str = "\n%%\n";

/// The rules file a bare condition is spliced into: a function with `let`, a recursive
/// wildcard, a collection-group match and `get`/`exists` reachable through the condition.
fn template(cond: &str) -> String {
    format!(
        "rules_version = '2';\nservice cloud.firestore {{\n  match /databases/{{database}}/documents {{\n    \
         function f(a, b) {{ let c = a; return c == b; }}\n    \
         function g(x) {{ return x is map && x.size() > 0; }}\n    \
         match /c/{{id}}/{{rest=**}} {{ allow read, write: if {cond}; }}\n    \
         match /{{path=**}}/g/{{doc}} {{ allow list, get: if {cond}; }}\n    \
         match /u/{{uid}} {{ allow create, update: if request.auth.uid == uid && ({cond}); }}\n  \
         }}\n}}\n"
    )
}

/// Decides get, list (with a query), collection-group list, create, update and delete — each
/// evaluated and explained — and a two-write batch.
pub fn rules_evaluate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (head, doc_json) = match text.split_once(DOC_SEPARATOR) {
        Some((h, d)) => (h, Some(d)),
        None => (text, None),
    };
    let src = if head.contains("service cloud.firestore") {
        head.to_owned()
    } else {
        template(head)
    };
    let Ok(rules) = Ruleset::compile(&src) else {
        return;
    };
    let data = doc_json
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .and_then(|j| claimdb_model::json::decode_document(&j).ok())
        .unwrap_or_else(sample_document);
    let mut docs: HashMap<String, Map> = HashMap::new();
    docs.insert("c/a".into(), data.clone());
    docs.insert("u/alice".into(), data.clone());
    docs.insert("c/a/g/x".into(), sample_document());
    let time = Timestamp::from_micros(1_795_435_200_000_000).unwrap_or_else(|_| Timestamp::now());
    let token = sample_token();
    let mut requests = Vec::new();
    for path in ["c/a", "c/a/g/x", "u/alice", "c/b/d/e"] {
        let Ok(path) = DocPath::parse(path) else {
            continue;
        };
        for method in [Method::Get, Method::Create, Method::Update, Method::Delete] {
            let mut r = Request::new(method, Target::Doc(path.clone()), time)
                .with_auth("alice", token.clone());
            if method != Method::Create {
                r.existing = Some(data.clone());
            }
            if matches!(method, Method::Create | Method::Update) {
                r.incoming = Some(data.clone());
            }
            requests.push(r);
        }
    }
    let query = Query {
        limit: Some(10),
        offset: None,
        order_by: vec![("n".into(), false)],
        filters: vec![
            Filter {
                field: "s".into(),
                op: FilterOp::Eq,
                value: Value::String("x".into()),
            },
            Filter {
                field: "n".into(),
                op: FilterOp::In,
                value: Value::Array(vec![Value::Int(1), Value::Int(2)]),
            },
        ],
        disjunctions: Vec::new(),
    };
    if let Ok(coll) = CollectionPath::parse("c") {
        let mut r = Request::new(Method::List, Target::Collection(coll), time);
        r.query = Some(query.clone());
        requests.push(r.clone().with_auth("alice", token.clone()));
        requests.push(r);
    }
    let mut group = Request::new(
        Method::List,
        Target::Group {
            under: None,
            collection_id: "g".into(),
        },
        time,
    )
    .with_auth("bob", token.clone());
    group.query = Some(query);
    requests.push(group);
    for r in &requests {
        let plain = rules.evaluate(r, &docs);
        let explained = rules.explain(r, &docs);
        assert_eq!(
            plain.allowed, explained.allowed,
            "explaining a decision changed it"
        );
    }
    let batch: Vec<Request> = requests
        .iter()
        .filter(|r| matches!(r.method, Method::Create | Method::Update))
        .take(2)
        .cloned()
        .collect();
    let _ = rules.evaluate_batch(&batch, &docs, true);
}

/// One field of every value type (nested map and array included).
fn sample_document() -> Map {
    let mut inner = Map::new();
    inner.insert("k".into(), Value::Bool(true));
    let mut m = Map::new();
    m.insert("n".into(), Value::Int(1));
    m.insert("d".into(), Value::Double(2.5));
    m.insert("s".into(), Value::String("x".into()));
    m.insert("b".into(), Value::Bytes(vec![0, 1, 255]));
    m.insert("z".into(), Value::Null);
    m.insert(
        "l".into(),
        Value::Array(vec![Value::Int(1), Value::Null, Value::String("y".into())]),
    );
    m.insert("m".into(), Value::Map(inner));
    m.insert(
        "g".into(),
        Value::GeoPoint {
            lat: 1.5,
            lng: -2.0,
        },
    );
    if let Ok(t) = Timestamp::from_micros(1_700_000_000_000_000) {
        m.insert("t".into(), Value::Timestamp(t));
    }
    if let Ok(p) = DocPath::parse("c/a") {
        m.insert("r".into(), Value::Reference(p));
    }
    m
}

/// The token claims `request.auth.token` carries.
fn sample_token() -> Map {
    let mut m = sample_document();
    m.insert("email".into(), Value::String("alice@example.com".into()));
    m.insert("moderator".into(), Value::Bool(true));
    m
}
