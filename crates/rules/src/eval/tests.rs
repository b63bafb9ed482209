//! Unit tests of expression evaluation: fused fast paths agree with the general ones.

use claimdb_model::{DocPath, Map, Timestamp, Value};

use crate::{Method, NoDocuments, Request, Ruleset, Target};

/// `a.diff(b).xKeys()` is evaluated without building the map_diff; through a `let` it is
/// not. Both must give the same value or error, including past the expression budget.
#[test]
fn fused_diff_keys_agree_with_the_map_diff_value() {
    let map = |pairs: &[(&str, Value)]| -> Map {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let mut req = Request::new(
        Method::Update,
        Target::Doc(DocPath::parse("c/d").unwrap()),
        Timestamp::now(),
    );
    req.existing = Some(map(&[
        ("a", Value::Int(1)),
        ("b", Value::String("x".into())),
        ("c", Value::Double(f64::NAN)),
        ("m", Value::Map(map(&[("k", Value::Bool(true))]))),
    ]));
    req.incoming = Some(map(&[
        ("a", Value::Double(1.0)),
        ("b", Value::String("y".into())),
        ("c", Value::Double(f64::NAN)),
        ("d", Value::Null),
    ]));
    let functions = "function keys(a, b, which) { let d = a.diff(b); return which == 'added' ? d.addedKeys() : which == 'removed' ? d.removedKeys() : which == 'changed' ? d.changedKeys() : which == 'unchanged' ? d.unchangedKeys() : d.affectedKeys(); }";
    let operands = [
        ("request.resource.data", "resource.data"),
        ("resource.data", "request.resource.data"),
        ("{'a': 1, 'z': [1]}", "resource.data"),
        ("resource.data", "{}"),
        ("{}", "{}"),
        ("resource.data", "1"),
        ("null", "resource.data"),
        ("'s'", "resource.data"),
        ("resource.data.missing", "resource.data"),
        ("resource.data", "resource.data.missing"),
    ];
    let functions =
        format!("{functions} function only(k, allowed) {{ return k.hasOnly(allowed); }}");
    let many = (0..70)
        .map(|i| format!("'k{i}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let allowed = [
        "['a', 'b']".to_string(),
        "['a', 'b', 'c', 'd', 'm']".to_string(),
        "[]".to_string(),
        "['a', 1, null, 'd']".to_string(),
        "['b', 'c', 'd'].toSet()".to_string(),
        format!("[{many}, 'a', 'b', 'c', 'd', 'm']"),
        format!("[{many}]"),
        "'a'".to_string(),
        "null".to_string(),
        "resource.data.missing".to_string(),
    ];
    let ok = |r: Result<String, String>| r.ok();
    for (a, b) in operands {
        for which in ["added", "removed", "changed", "unchanged", "affected"] {
            let fused = format!("{a}.diff({b}).{which}Keys()");
            let plain = format!("keys({a}, {b}, '{which}')");
            assert_eq!(
                ok(Ruleset::evaluate_expression(
                    &functions,
                    &fused,
                    &req,
                    &NoDocuments
                )),
                ok(Ruleset::evaluate_expression(
                    &functions,
                    &plain,
                    &req,
                    &NoDocuments
                )),
                "{fused}"
            );
            for allowed in &allowed {
                let fused = format!("{a}.diff({b}).{which}Keys().hasOnly({allowed})");
                let plain = format!("only(keys({a}, {b}, '{which}'), {allowed})");
                assert_eq!(
                    ok(Ruleset::evaluate_expression(
                        &functions,
                        &fused,
                        &req,
                        &NoDocuments
                    )),
                    ok(Ruleset::evaluate_expression(
                        &functions,
                        &plain,
                        &req,
                        &NoDocuments
                    )),
                    "{fused}"
                );
            }
        }
    }
}
