//! Fuzzes the evaluator: the input is an allow condition spliced into a fixed rules file; whatever
//! compiles is evaluated (and explained) for each method against a small set of documents.
#![no_main]

use std::collections::HashMap;

use claimdb_model::{CollectionPath, DocPath, Map, Timestamp, Value};
use claimdb_rules::{Method, Request, Ruleset, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cond) = std::str::from_utf8(data) else {
        return;
    };
    let src = format!(
        "rules_version = '2';\nservice cloud.firestore {{ match /databases/{{database}}/documents {{\n\
         function f(a, b) {{ let c = a; return c == b; }}\n\
         match /c/{{id}}/{{rest=**}} {{ allow read, write: if {cond}; }} }} }}"
    );
    let Ok(rules) = Ruleset::compile(&src) else {
        return;
    };
    let mut doc = Map::new();
    doc.insert("n".into(), Value::Int(1));
    doc.insert("s".into(), Value::String("x".into()));
    doc.insert("l".into(), Value::Array(vec![Value::Int(1), Value::Null]));
    let mut docs: HashMap<String, Map> = HashMap::new();
    docs.insert("c/a".into(), doc.clone());
    let Ok(path) = DocPath::parse("c/a") else {
        return;
    };
    for method in [Method::Get, Method::Create, Method::Update, Method::Delete] {
        let mut r = Request::new(method, Target::Doc(path.clone()), Timestamp::now())
            .with_auth("u", doc.clone());
        r.existing = Some(doc.clone());
        r.incoming = Some(doc.clone());
        let _ = rules.evaluate(&r, &docs);
        let _ = rules.explain(&r, &docs);
    }
    if let Ok(coll) = CollectionPath::parse("c") {
        let r = Request::new(Method::List, Target::Collection(coll), Timestamp::now());
        let _ = rules.explain(&r, &docs);
    }
});
