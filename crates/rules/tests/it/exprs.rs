//! The expression table: each case is an expression, evaluated in a `get` of `users/alice` by
//! `alice`, and either its rendered value or a fragment of its error. Facts of the Firestore rules
//! language's values, operators, functions and methods.

use claimdb_model::Map;
use claimdb_rules::Ruleset;
use serde_json::json;

use crate::{doc, request, with_auth};

const FUNCTIONS: &str = "
function double(x) { return x * 2; }
function isAdmin() { return request.auth.token.admin == true; }
function lazy(a) { let unused = a.missing; let ok = a.size(); return ok; }
function chain(a, b) { let s = a + b; let t = s * 2; return t - 1; }
";

fn ev(expr: &str) -> Result<String, String> {
    let mut r = with_auth(
        request("get", "users/alice"),
        "alice",
        json!({
            "admin": true, "email": "a@x.com", "email_verified": true, "roles": {"editor": true},
            "firebase": {"identities": {"google.com": ["g-123"]}, "sign_in_provider": "google.com"}
        }),
    );
    r.existing = Some(doc(json!({
        "name": "Alice", "age": 30, "score": 1.5, "tags": ["a", "b"], "nested": {"x": 1},
        "created": {"$timestamp": "2025-12-31T00:00:00Z"}, "owner": "alice"
    })));
    let docs: std::collections::HashMap<String, Map> = [(
        "groups/g1/members/alice".to_string(),
        doc(json!({"role": "admin"})),
    )]
    .into_iter()
    .collect();
    Ruleset::evaluate_expression(FUNCTIONS, expr, &r, &docs)
}

type Case = (&'static str, Result<&'static str, &'static str>);

const CASES: &[Case] = &[
    // Literals.
    ("null", Ok("null")),
    ("true", Ok("true")),
    ("42", Ok("42")),
    ("-9223372036854775808", Ok("-9223372036854775808")),
    ("1.5", Ok("1.5")),
    ("2.0", Ok("2.0")),
    ("'single'", Ok("\"single\"")),
    ("\"double\"", Ok("\"double\"")),
    ("'a\\nb'", Ok("\"a\\nb\"")),
    ("'\\u00e9'", Ok("\"é\"")),
    ("b'ab'", Ok("b'\\x61\\x62'")),
    ("b'\\xff'", Ok("b'\\xff'")),
    ("[1, 'a', null]", Ok("[1, \"a\", null]")),
    ("[]", Ok("[]")),
    ("{'k': 1, 'j': [true]}", Ok("{\"k\": 1, \"j\": [true]}")),
    (
        "/databases/$(database)/documents/users/$(request.auth.uid)",
        Ok("/databases/(default)/documents/users/alice"),
    ),
    ("/a/b-c/d.e", Ok("/a/b-c/d.e")),
    (
        "/databases/(default)/documents/x/y",
        Ok("/databases/(default)/documents/x/y"),
    ),
    // Lexical corners.
    ("'/*' + '//'", Ok("\"/*//\"")),
    ("1-1", Ok("0")),
    ("[-1, -2.5]", Ok("[-1, -2.5]")),
    ("0.001 < 0.01", Ok("true")),
    ("{'in': 1, 'is': 2}.in", Ok("1")),
    ("resource.data.size() > 0", Ok("true")),
    ("request.auth.uid in [resource.data.owner]", Ok("true")),
    ("(request.auth != null)", Ok("true")),
    (
        "/databases/$(database)/documents/x/$(request.auth.token.get('missing', 'dflt'))",
        Ok("/databases/(default)/documents/x/dflt"),
    ),
    (
        "resource.data.created + duration.value(1, 'd') > request.time",
        Ok("false"),
    ),
    (
        "request.time < resource.data.created + duration.value(2, 'd')",
        Ok("true"),
    ),
    // Arithmetic.
    ("1 + 2 * 3", Ok("7")),
    ("(1 + 2) * 3", Ok("9")),
    ("7 / 2", Ok("3")),
    ("-7 / 2", Ok("-3")),
    ("7 % 3", Ok("1")),
    ("7.0 / 2", Ok("3.5")),
    ("1 + 0.5", Ok("1.5")),
    ("1 / 0", Err("division by zero")),
    ("1 % 0", Err("division by zero")),
    ("9223372036854775807 + 1", Err("overflow")),
    ("-9223372036854775807 - 2", Err("overflow")),
    ("4611686018427387904 * 2", Err("overflow")),
    ("-(-9223372036854775807 - 1)", Err("overflow")),
    ("1.0 / 0", Ok("Infinity")),
    ("'a' + 'b'", Ok("\"ab\"")),
    ("[1] + [2, 3]", Err("not defined for list and list")),
    ("[1].concat([2, 3])", Ok("[1, 2, 3]")),
    ("'a' + 1", Err("'+' is not defined for string and int")),
    ("'a' * 2", Err("not defined")),
    ("-'a'", Err("'-' needs a number")),
    // Comparison and equality.
    ("1 == 1.0", Ok("true")),
    ("1 != 2", Ok("true")),
    ("1 < 2.5", Ok("true")),
    ("'abc' < 'abd'", Ok("true")),
    ("'b' >= 'a'", Ok("true")),
    ("[1, 2] == [1, 2]", Ok("true")),
    ("{'a': 1} == {'a': 1.0}", Ok("false")),
    ("{'a': 1} == {'a': 2}", Ok("false")),
    ("1 == '1'", Ok("false")),
    ("null == null", Ok("true")),
    ("1 < 'a'", Err("'<' is not defined")),
    ("math.sqrt(-1.0) == math.sqrt(-1.0)", Ok("false")),
    // Logic, short-circuit and error absorption.
    ("true && false", Ok("false")),
    ("true || false", Ok("true")),
    ("!true", Ok("false")),
    ("!1", Err("'!' needs a bool")),
    ("false && resource.data.missing", Ok("false")),
    ("true || resource.data.missing", Ok("true")),
    ("resource.data.missing && false", Ok("false")),
    ("resource.data.missing || true", Ok("true")),
    (
        "resource.data.missing && true",
        Err("Property missing is undefined"),
    ),
    (
        "resource.data.missing || false",
        Err("Property missing is undefined"),
    ),
    ("true && 1", Err("expected a bool")),
    (
        "!resource.data.missing",
        Err("Property missing is undefined"),
    ),
    ("true ? 1 : resource.data.missing", Ok("1")),
    ("false ? resource.data.missing : 2", Ok("2")),
    ("1 ? 2 : 3", Err("expected a bool")),
    ("true ? false ? 1 : 2 : 3", Ok("2")),
    // in and is.
    ("'a' in ['a', 'b']", Ok("true")),
    ("1.0 in [1]", Ok("false")),
    ("'k' in {'k': 1}", Ok("true")),
    ("'z' in {'k': 1}", Ok("false")),
    ("'a' in ['a'].toSet()", Ok("true")),
    ("1 in 'abc'", Err("'in' needs a list, set or map")),
    ("1 is int", Ok("true")),
    ("1 is number", Ok("true")),
    ("1.5 is float", Ok("true")),
    ("1 is float", Ok("false")),
    ("'s' is string", Ok("true")),
    ("[1] is list", Ok("true")),
    ("{} is map", Ok("true")),
    ("request.time is timestamp", Ok("true")),
    ("duration.value(1, 's') is duration", Ok("true")),
    ("/a/b is path", Ok("true")),
    ("b'x' is bytes", Ok("true")),
    ("latlng.value(1, 2) is latlng", Ok("true")),
    ("null is map", Ok("false")),
    ("true is bool", Ok("true")),
    // Member access, indexing and slices.
    ("resource.data.name", Ok("\"Alice\"")),
    ("resource.data['age']", Ok("30")),
    ("resource.data.nested.x", Ok("1")),
    (
        "resource.data.missing",
        Err("Property missing is undefined on object"),
    ),
    ("resource.id", Ok("\"alice\"")),
    (
        "resource.__name__",
        Ok("/databases/(default)/documents/users/alice"),
    ),
    ("resource.data.tags[1]", Ok("\"b\"")),
    ("resource.data.tags[2]", Err("out of range")),
    ("resource.data.tags[-1]", Err("out of range")),
    ("[1, 2, 3, 4][1:3]", Ok("[2, 3]")),
    ("[1, 2, 3][null:2]", Ok("[1, 2]")),
    ("[1, 2, 3][1:null]", Ok("[2, 3]")),
    ("'hello'[1:3]", Ok("\"el\"")),
    ("'hello'[0]", Ok("\"h\"")),
    ("[1, 2][1:1]", Ok("[]")),
    ("[1, 2][2:2]", Err("out of range")),
    ("[1, 2, 3][2:1]", Err("reversed")),
    ("null.x", Err("Null value error")),
    ("request.auth.uid", Ok("\"alice\"")),
    ("request.auth.token.email", Ok("\"a@x.com\"")),
    ("request.auth.token.roles.editor", Ok("true")),
    (
        "request.auth.token.moderator",
        Err("Property moderator is undefined"),
    ),
    ("request.method", Ok("\"get\"")),
    (
        "request.path",
        Ok("/databases/(default)/documents/users/alice"),
    ),
    ("request.time", Ok("2026-01-01T12:00:00.000000000Z")),
    ("request.resource", Err("Property resource is undefined")),
    (
        "request.resource.data",
        Err("Property resource is undefined"),
    ),
    ("request.query", Err("Property query is undefined")),
    ("database", Ok("\"(default)\"")),
    ("document", Ok("/users/alice")),
    ("/databases/$(database)/documents/x/y[3]", Ok("\"x\"")),
    // The reference's request and resource examples (rules.firestore.Request / Resource).
    (
        "resource['__name__'] == /databases/(default)/documents/users/$(resource.id)",
        Ok("true"),
    ),
    (
        "resource['__name__'] == /databases/$(database)/documents/users/bob",
        Ok("false"),
    ),
    (
        "request.auth.token.firebase.identities['google.com'][0]",
        Ok("\"g-123\""),
    ),
    (
        "request.auth.token.firebase.sign_in_provider != 'anonymous'",
        Ok("true"),
    ),
    (
        "request.auth.token.email_verified && request.auth.token.email.matches('.*@x[.]com')",
        Ok("true"),
    ),
    (
        "request.auth.token.get('phone_number', null) == null",
        Ok("true"),
    ),
    // Strings.
    ("'AbC'.lower()", Ok("\"abc\"")),
    ("'AbC'.upper()", Ok("\"ABC\"")),
    ("'  x  '.trim()", Ok("\"x\"")),
    ("'héllo'.size()", Ok("5")),
    ("'abc'.matches('a.c')", Ok("true")),
    ("'abcd'.matches('a.c')", Ok("false")),
    ("'a@x.com'.matches('.*@x[.]com')", Ok("true")),
    ("resource.data.name.matches('[A-Z].*')", Ok("true")),
    ("'abc'.matches('(')", Err("invalid regular expression")),
    ("'a1b22c'.replace('[0-9]+', '-')", Ok("\"a-b-c\"")),
    ("'a,b,,c'.split(',')", Ok("[\"a\", \"b\", \"\", \"c\"]")),
    ("'é'.toUtf8()", Ok("b'\\xc3\\xa9'")),
    ("'abc'.toLowerCase()", Err("no method toLowerCase()")),
    ("string(null)", Ok("\"null\"")),
    ("string(true)", Ok("\"true\"")),
    ("string(12)", Ok("\"12\"")),
    ("string(1.5)", Ok("\"1.5\"")),
    ("int('42')", Ok("42")),
    ("int(3.9)", Ok("3")),
    ("int('x')", Err("not an integer")),
    ("float(2)", Ok("2.0")),
    ("float('2.5')", Ok("2.5")),
    ("path('/users/alice')", Ok("/users/alice")),
    // A path written in rules has no variables to bind (the emulator's `bind` only accepts an
    // empty map); an unknown `$(name)` is a null value error.
    (
        "(/path/$(foo)/$(bar)).bind({'foo': 'something', 'bar': 'another'})",
        Err("Null value error"),
    ),
    ("(/path/x).bind({})", Ok("/path/x")),
    (
        "(/path/x).bind({'foo': 'y'})",
        Err("not a variable of this path"),
    ),
    ("string(2.0)", Ok("\"2.0\"")),
    ("'banana'.replace('a', 'o')", Ok("\"bonono\"")),
    ("'banana'.replace('ana', 'ee')", Ok("\"beena\"")),
    ("'foo@test.com'.replace('.', '-')", Ok("\"------------\"")),
    ("'a/b/c'.split('/')", Ok("[\"a\", \"b\", \"c\"]")),
    ("'ABC123'.lower()", Ok("\"abc123\"")),
    ("'user@domain.com'.matches('.*@domain[.]com')", Ok("true")),
    ("'banana'.matches('.*@domain[.]com')", Ok("false")),
    ("['a', 'a', 'b'].hasOnly(['a', 'b', 'b'])", Ok("true")),
    ("['a', 'b'].hasOnly(['b', 'a'])", Ok("true")),
    (
        "duration.abs(duration.value(-10, 's')) == duration.value(10, 's')",
        Ok("true"),
    ),
    // Lists.
    ("[1, 2, 3].size()", Ok("3")),
    ("['a', 'b'].hasAll(['a'])", Ok("true")),
    ("['a', 'b'].hasAll(['a', 'c'])", Ok("false")),
    ("['a', 'b'].hasAny(['c', 'b'])", Ok("true")),
    ("['a', 'b'].hasAny([])", Ok("false")),
    ("['a', 'b'].hasOnly(['a', 'b', 'c'])", Ok("true")),
    ("['a', 'd'].hasOnly(['a', 'b'])", Ok("false")),
    ("['a', 'b'].join('-')", Ok("\"a-b\"")),
    ("[1].join('-')", Ok("\"1\"")),
    ("[[1]].join('-')", Err("string() converts")),
    ("[1].concat([2])", Ok("[1, 2]")),
    ("[1, 2, 1, 3].removeAll([1])", Ok("[2, 3]")),
    ("[2, 1, 2].toSet()", Ok("set([1, 2])")),
    ("[2, 1, 2].toSet().size()", Ok("2")),
    ("resource.data.tags.hasAny(['b'])", Ok("true")),
    // Sets.
    ("[1, 2].toSet().union([3].toSet())", Ok("set([1, 2, 3])")),
    (
        "[1, 2].toSet().union([3])",
        Err("set.union(list) is not defined"),
    ),
    (
        "[1, 2].toSet().intersection([2, 3].toSet())",
        Ok("set([2])"),
    ),
    ("[1, 2].toSet().difference([2].toSet())", Ok("set([1])")),
    ("[1, 2].toSet().hasAll([1])", Ok("true")),
    ("[1, 2].toSet() == [2, 1].toSet()", Ok("true")),
    // Maps and MapDiff.
    ("{'a': 1, 'b': 2}.size()", Ok("2")),
    ("{'b': 1, 'a': 2}.keys()", Ok("[\"a\", \"b\"]")),
    ("{'a': 1, 'b': 2}.values()", Ok("[1, 2]")),
    ("{'a': 1}.get('a', 0)", Ok("1")),
    ("{'a': 1}.get('z', 0)", Ok("0")),
    ("{'a': {'b': 5}}.get(['a', 'b'], 0)", Ok("5")),
    ("{'a': {'b': 5}}.get(['a', 'c'], 'none')", Ok("\"none\"")),
    (
        "{'a': 1, 'b': 2}.diff({'b': 3, 'c': 4}).addedKeys()",
        Ok("set([\"a\"])"),
    ),
    (
        "{'a': 1, 'b': 2}.diff({'b': 3, 'c': 4}).removedKeys()",
        Ok("set([\"c\"])"),
    ),
    (
        "{'a': 1, 'b': 2}.diff({'b': 3, 'c': 4}).changedKeys()",
        Ok("set([\"b\"])"),
    ),
    (
        "{'a': 1, 'b': 2}.diff({'b': 2}).unchangedKeys()",
        Ok("set([\"b\"])"),
    ),
    (
        "{'a': 1, 'b': 2}.diff({'b': 3, 'c': 4}).affectedKeys()",
        Ok("set([\"a\", \"b\", \"c\"])"),
    ),
    (
        "{'a': 1, 'b': 2}.diff({'a': 1, 'b': 3}).affectedKeys().hasOnly(['b'])",
        Ok("true"),
    ),
    ("{'a': 1}.diff(1)", Err("map.diff(int) is not defined")),
    (
        "resource.data.diff(resource.data).affectedKeys().size()",
        Ok("0"),
    ),
    // Timestamps and durations.
    ("timestamp.date(2024, 2, 29).month()", Ok("2")),
    ("timestamp.date(2023, 2, 29)", Err("not a valid date")),
    ("timestamp.value(0)", Ok("1970-01-01T00:00:00.000000000Z")),
    ("request.time.year()", Ok("2026")),
    ("request.time.hours()", Ok("12")),
    ("request.time.dayOfWeek()", Ok("4")),
    ("request.time.dayOfYear()", Ok("1")),
    ("request.time.toMillis()", Ok("1767268800000")),
    ("request.time.date()", Ok("2026-01-01T00:00:00.000000000Z")),
    ("request.time.time()", Ok("duration(43200s, 0ns)")),
    (
        "request.time + duration.value(1, 'h')",
        Ok("2026-01-01T13:00:00.000000000Z"),
    ),
    (
        "request.time - duration.value(2, 'd')",
        Ok("2025-12-30T12:00:00.000000000Z"),
    ),
    (
        "request.time - resource.data.created",
        Ok("duration(129600s, 0ns)"),
    ),
    ("resource.data.created < request.time", Ok("true")),
    ("duration.value(90, 's').seconds()", Ok("90")),
    ("duration.value(1500, 'ms').nanos()", Ok("500000000")),
    ("duration.time(1, 2, 3, 4)", Ok("duration(3723s, 4ns)")),
    (
        "duration.value(1, 'fortnight')",
        Err("unknown duration unit"),
    ),
    (
        "duration.value(1, 'w') > duration.value(6, 'd')",
        Ok("true"),
    ),
    // Math, latlng, bytes, hashing.
    ("math.abs(-3)", Ok("3")),
    ("math.abs(-2.5)", Ok("2.5")),
    ("math.ceil(1.2)", Ok("2.0")),
    ("math.ceil(2.0) == 2", Ok("true")),
    ("math.floor(-1.2)", Ok("-2.0")),
    ("math.floor(2.7)", Ok("2.0")),
    ("math.round(2.5)", Ok("3")),
    ("math.round(-2.5)", Ok("-2")),
    ("math.ceil(1.0)", Ok("1.0")),
    ("math.pow(4, 0.5) == 2", Ok("true")),
    ("math.sqrt(16)", Ok("4.0")),
    ("math.pow(2, 10)", Ok("1024.0")),
    ("math.isNaN(math.sqrt(-1.0))", Ok("true")),
    (
        "math.isInfinite(1.0 / 0)",
        Err("there is no function math.isInfinite()"),
    ),
    ("latlng.value(10, 20).latitude()", Ok("10.0")),
    ("latlng.value(91, 0)", Err("out of range")),
    (
        "latlng.value(0, 0).distance(latlng.value(0, 1)) > 111000",
        Ok("true"),
    ),
    ("b'\\x00\\xff'.size()", Ok("2")),
    ("b'hi'.toBase64()", Ok("\"aGk=\"")),
    ("b'\\xFB\\xEF\\xBE'.toBase64()", Ok("\"----\"")),
    ("b'\\x01\\xab'.toHexString()", Ok("\"01AB\"")),
    ("b'€'.toHexString()", Ok("\"E282AC\"")),
    ("b'*' == b'\\052' && b'\\052' == b'\\x2A'", Ok("true")),
    ("b'€' == b'\\342\\202\\254'", Ok("true")),
    ("b'€'.size()", Ok("3")),
    ("hashing.crc32('123456789')", Ok("b'\\x26\\x39\\xf4\\xcb'")),
    (
        "hashing.crc32c(b'123456789').toHexString()",
        Ok("\"839206E3\""),
    ),
    (
        "hashing.md5('').toHexString()",
        Ok("\"D41D8CD98F00B204E9800998ECF8427E\""),
    ),
    (
        "hashing.sha256('abc').toHexString()",
        Ok("\"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\""),
    ),
    ("hashing.sha256(1)", Err("it takes a string or bytes")),
    // Functions, lets.
    ("double(21)", Ok("42")),
    ("isAdmin()", Ok("true")),
    ("lazy([1, 2])", Ok("2")),
    ("chain(1, 2)", Ok("5")),
    ("debug(1 + 1)", Ok("2")),
    // get() / exists() through the reader.
    (
        "get(/databases/$(database)/documents/groups/g1/members/alice).data.role",
        Ok("\"admin\""),
    ),
    (
        "exists(/databases/$(database)/documents/groups/g1/members/alice)",
        Ok("true"),
    ),
    (
        "exists(/databases/$(database)/documents/groups/g1/members/bob)",
        Ok("false"),
    ),
    (
        "get(/databases/$(database)/documents/groups/g1/members/bob)",
        Ok("null"),
    ),
    (
        "get(/databases/$(database)/documents/groups/g1/members/bob).data",
        Err("Null value error"),
    ),
    (
        "getAfter(/databases/$(database)/documents/groups/g1/members/alice).data.role",
        Ok("\"admin\""),
    ),
    (
        "get(/databases/$(database)/documents/groups/g1/members/alice).id",
        Ok("\"alice\""),
    ),
    (
        "get(/users/alice)",
        Err("needs the path of a document of this database"),
    ),
    (
        "get(/databases/other/documents/a/b)",
        Err("needs the path of a document of this database"),
    ),
    ("get('x')", Err("needs a path")),
];

#[test]
fn expression_table() {
    let mut failures = Vec::new();
    for (expr, want) in CASES {
        let got = ev(expr);
        let ok = match (&got, want) {
            (Ok(v), Ok(w)) => v == w,
            (Err(e), Err(w)) => e.contains(w),
            _ => false,
        };
        if !ok {
            failures.push(format!("{expr}\n    want {want:?}\n    got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    assert!(
        CASES.len() >= 150,
        "the table should hold at least 150 cases"
    );
}

#[test]
fn duration_arithmetic_overflow_is_an_error() {
    let e = ev("duration.value(9223372036854775807, 'w')").unwrap_err();
    assert!(e.contains("out of range"), "{e}");
    let e =
        ev("duration.value(300000000000, 's') + duration.value(300000000000, 's')").unwrap_err();
    assert!(e.contains("out of range"), "{e}");
    // Durations do not multiply (the emulator has no `duration * int`).
    let e = ev("duration.value(1, 'w') * 2").unwrap_err();
    assert!(e.contains("not defined"), "{e}");
}
