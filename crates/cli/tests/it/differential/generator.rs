//! The deterministic generator of the differential check: rules files and requests that cover
//! the whole rules language (every function and method of the reference, errors in every
//! position, the get/list split, recursive wildcards, overlapping matches, queries with
//! constraints, the compile-time grammar), from a fixed seed.
//!
//! A [`Suite`] is one rules file, the documents stored before its requests, and the requests.
//! Documents are written in claimdb's `$`-tagged JSON with map keys in sorted order (claimdb
//! stores maps sorted; see the README's list of differences).

use serde_json::{Value, json};

/// A small, stable pseudo-random generator (SplitMix64): the same seed gives the same suites on
/// every machine and Rust version.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub(crate) fn pick<'x, X>(&mut self, xs: &'x [X]) -> &'x X {
        &xs[self.below(xs.len())]
    }
}

/// One request of a suite.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub name: String,
    /// `None`: unauthenticated; else the uid and the extra token claims.
    pub auth: Option<(String, Value)>,
    pub method: &'static str,
    /// A document (or for `list`, a collection) below the database root.
    pub path: String,
    /// The document a create or update writes.
    pub data: Option<Value>,
    pub query: Option<Query>,
}

/// A list request's query, in claimdb's `/v1/query` terms.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    /// `[field, op, value]` triples.
    pub filters: Vec<(String, &'static str, Value)>,
    /// An or of conjunctions of triples, beside `filters` (none when empty).
    pub or: Vec<Vec<(String, &'static str, Value)>>,
    /// Field and descending.
    pub order_by: Vec<(String, bool)>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    /// A collection group query over the last segment of the path (below its parent, if any).
    pub group: bool,
}

/// One rules file with its documents and requests.
#[derive(Debug, Clone)]
pub(crate) struct Suite {
    pub name: String,
    pub rules: String,
    pub docs: Vec<(String, Value)>,
    pub cases: Vec<Case>,
}

impl Suite {
    /// The suite as JSON (for `CLAIMDB_TEST_DIFF_DUMP`).
    pub(crate) fn to_json(&self) -> Value {
        let cases: Vec<Value> = self
            .cases
            .iter()
            .map(|c| {
                let mut v = json!({
                    "name": c.name,
                    "auth": c.auth.as_ref().map(|(uid, token)| json!({"uid": uid, "token": token})),
                    "method": c.method,
                    "path": c.path,
                });
                if let Some(d) = &c.data {
                    v["data"] = d.clone();
                }
                if let Some(q) = &c.query {
                    v["query"] = json!({
                        "where": q.filters.iter().map(|(f, op, v)| json!([f, op, v])).collect::<Vec<_>>(),
                        "order_by": q.order_by.iter().map(|(f, d)| if *d { format!("{f} desc") } else { f.clone() }).collect::<Vec<_>>(),
                        "group": q.group,
                    });
                    if !q.or.is_empty() {
                        v["query"]["or"] = q
                            .or
                            .iter()
                            .map(|b| b.iter().map(|(f, op, v)| json!([f, op, v])).collect::<Vec<_>>())
                            .collect::<Vec<_>>()
                            .into();
                    }
                    if let Some(l) = q.limit {
                        v["query"]["limit"] = json!(l);
                    }
                    if let Some(o) = q.offset {
                        v["query"]["offset"] = json!(o);
                    }
                }
                v
            })
            .collect();
        json!({
            "name": self.name,
            "rules": self.rules,
            "docs": self.docs.iter().map(|(p, d)| (p.clone(), d.clone())).collect::<serde_json::Map<_, _>>(),
            "cases": cases,
        })
    }
}

/// Every suite of the check, from one seed.
pub(crate) fn suites(seed: u64) -> Vec<Suite> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    out.extend(fixed_suites());
    for i in 0..36 {
        out.push(expr_suite(&mut rng, i));
    }
    for i in 0..8 {
        out.push(write_suite(&mut rng, i));
    }
    for i in 0..24 {
        out.push(path_suite(&mut rng, i));
    }
    for i in 0..24 {
        out.push(list_suite(&mut rng, i));
    }
    for i in 0..6 {
        out.push(budget_suite(&mut rng, i));
    }
    out.extend(compile_suites(&mut rng));
    out
}

const HEADER: &str =
    "rules_version = '2';\nservice cloud.firestore {\n  match /databases/{database}/documents {\n";
const FOOTER: &str = "  }\n}\n";

fn auths() -> Vec<Option<(String, Value)>> {
    vec![
        None,
        Some(("u1".into(), json!({}))),
        Some((
            "alice".into(),
            json!({"admin": true, "level": 3, "email": "alice@example.com", "roles": ["editor", "viewer"], "https://app.example/roles": ["moderator"], "score": 2.5}),
        )),
    ]
}

/// The document `resource` holds in expression suites.
fn rich_doc() -> Value {
    json!({
        "big": 9_223_372_036_854_775_807i64,
        "bin": {"$bytes": "q80A/w=="},
        "created": {"$timestamp": "2020-01-02T03:04:05.123456Z"},
        "e": "",
        "f": 2.5,
        "geo": {"$geo": [48.85, 2.35]},
        "m": {"deep": {"k": [1]}, "x": 1, "y": "two"},
        "mixed": [1, 1.0, "1", null],
        "n": 5,
        "neg": -3,
        "nums": [1, 2, 3],
        "owner": "alice",
        "ref": {"$ref": "users/alice"},
        "s": "Hello World",
        "t": true,
        "tags": ["a", "b", "c"],
        "u": "é😀",
        "whole": 2.0,
        "z": null
    })
}

// ----- expressions

#[derive(Clone, Copy, PartialEq, Debug)]
enum T {
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    List,
    Map,
    Set,
    Ts,
    Dur,
    LatLng,
    Path,
}

const TYPES: &[T] = &[
    T::Bool,
    T::Int,
    T::Float,
    T::Str,
    T::Bytes,
    T::List,
    T::Map,
    T::Set,
    T::Ts,
    T::Dur,
    T::LatLng,
    T::Path,
];

fn type_name(t: T) -> &'static str {
    match t {
        T::Bool => "bool",
        T::Int => "int",
        T::Float => "float",
        T::Str => "string",
        T::Bytes => "bytes",
        T::List => "list",
        T::Map => "map",
        T::Set => "set",
        T::Ts => "timestamp",
        T::Dur => "duration",
        T::LatLng => "latlng",
        T::Path => "path",
    }
}

/// What an expression may refer to.
#[derive(Clone, Copy)]
struct Scope {
    /// `resource` is the rich document.
    resource: bool,
    /// `request.resource` is a document (a create or update).
    incoming: bool,
}

struct Expr<'r> {
    rng: &'r mut Rng,
    scope: Scope,
}

impl Expr<'_> {
    fn err(&mut self) -> String {
        self.rng
            .pick(&[
                "resource.data.missing",
                "null.x",
                "undefinedName",
                "noSuchFunction(1)",
                "(1 / 0)",
                "[][0]",
                "'a'.noSuchMethod()",
                "math.isInfinite(1.0)",
                "bool('true')",
                "request.resource.data",
                "(1).size()",
                "{'a': 1}.b",
                "request.nothing",
                "timestamp.now()",
                "(9223372036854775807 + 1)",
            ])
            .to_string()
    }

    fn lit(&mut self, t: T) -> String {
        let r = &mut *self.rng;
        match t {
            T::Bool => r.pick(&["true", "false"]).to_string(),
            T::Int => r
                .pick(&[
                    "0",
                    "1",
                    "2",
                    "3",
                    "7",
                    "-1",
                    "-5",
                    "42",
                    "10",
                    "9223372036854775807",
                    "-9223372036854775808",
                    "4611686018427387904",
                    "100",
                ])
                .to_string(),
            T::Float => r
                .pick(&[
                    "0.0",
                    "1.0",
                    "2.5",
                    "-2.5",
                    "0.5",
                    "1.5",
                    "10000000.0",
                    "0.0001",
                    ".5",
                    "5.",
                    "3.0",
                    "-0.5",
                    "2.0",
                    "1000000.0",
                    "123456789.0",
                    "0.1",
                ])
                .to_string(),
            T::Str => r
                .pick(&[
                    "''",
                    "'a'",
                    "'abc'",
                    "'ABC'",
                    "'é'",
                    "'É'",
                    "'😀'",
                    "'a😀b'",
                    "' pad '",
                    "'\\u00a0x\\u00a0'",
                    "'a,b,,'",
                    "'Straße'",
                    "'x.y.z'",
                    "'hello world'",
                    "'$1'",
                    "'ab12'",
                    "\"dq\"",
                    "'line\\nbreak'",
                    "'\\t tab'",
                    "'42'",
                    "' 42'",
                    "'+3'",
                    "'1.5'",
                    "'1e3'",
                    "'NaN'",
                    "'-Infinity'",
                    "'2.5d'",
                    "'\\uff21'",
                    "'\\x41\\101'",
                ])
                .to_string(),
            T::Bytes => r
                .pick(&["b'ab'", "b'\\xff\\x00'", "b''", "b'\\101'"])
                .to_string(),
            T::List => r
                .pick(&[
                    "[]",
                    "[1, 2, 3]",
                    "[1.0]",
                    "[1]",
                    "['a', 'b']",
                    "['b', 'a', 'b']",
                    "[null]",
                    "[[1], [2]]",
                    "[{'a': 1}]",
                    "[1, 'a', true, null]",
                    "[3, 1, 2]",
                    "['a', 'c']",
                ])
                .to_string(),
            T::Map => r
                .pick(&[
                    "{}",
                    "{'a': 1}",
                    "{'b': 2, 'a': 1}",
                    "{'a': 1.0}",
                    "{'a': {'b': [1, 2]}}",
                    "{'z': 1, 'y': 2, 'x': 3}",
                    "{'a': 1, 'a': 2}",
                    "{'k': null}",
                ])
                .to_string(),
            T::Set => r
                .pick(&[
                    "[1, 2].toSet()",
                    "['a', 'b', 'a'].toSet()",
                    "[].toSet()",
                    "[1, 1.0, 2].toSet()",
                    "[[1], [1.0]].toSet()",
                ])
                .to_string(),
            T::Ts => r
                .pick(&[
                    "request.time",
                    "timestamp.date(2020, 1, 2)",
                    "timestamp.date(2024, 2, 29)",
                    "timestamp.value(1577934245000)",
                    "timestamp.value(-1000)",
                    "timestamp.value('2020-01-02T03:04:05Z')",
                    "timestamp.value('2020-13-02T03:04:05.5+01:00')",
                ])
                .to_string(),
            T::Dur => r
                .pick(&[
                    "duration.value(1, 's')",
                    "duration.value(90, 'm')",
                    "duration.value(-2, 'h')",
                    "duration.value(1, 'd')",
                    "duration.value(1, 'w')",
                    "duration.value(1500, 'ms')",
                    "duration.value(7, 'ns')",
                    "duration.time(1, 2, 3, 4)",
                    "duration.value(1, 'x')",
                ])
                .to_string(),
            T::LatLng => r
                .pick(&[
                    "latlng.value(1, 2)",
                    "latlng.value(48.85, 2.35)",
                    "latlng.value(-90, 180)",
                    "latlng.value(91, 0)",
                ])
                .to_string(),
            T::Path => r
                .pick(&[
                    "/databases/$(database)/documents/e/x",
                    "/a/b",
                    "/a/$(1)/$(true)",
                    "/a/$(null)",
                    "/a/$(1.5)",
                    "/a/$(/b/c)",
                    "path('a/b')",
                    "path('/a/b/c')",
                    "path('a//b')",
                    "path('')",
                    "path('a%20b/c+d')",
                    "/a%20b/c+d",
                    "/(default)/x",
                ])
                .to_string(),
        }
    }

    fn expr_of(&mut self, ts: &[T], d: u32) -> String {
        let t = *self.rng.pick(ts);
        self.expr(t, d)
    }

    /// An expression of type `t` (most of the time; errors are injected on purpose).
    fn expr(&mut self, t: T, depth: u32) -> String {
        if self.rng.chance(5) {
            return self.err();
        }
        if depth == 0 || self.rng.chance(30) {
            return self.leaf(t);
        }
        let d = depth - 1;
        if self.rng.chance(2) {
            // `debug()` returns its argument (and logs it).
            return format!("debug({})", self.expr(t, d));
        }
        let r = self.rng.below(100);
        match t {
            T::Bool => self.boolean(d),
            T::Int => match r {
                0..=14 => {
                    let op = *self.rng.pick(&["+", "-", "*", " / ", "%"]);
                    format!("({} {op} {})", self.expr(T::Int, d), self.expr(T::Int, d))
                }
                15..=19 => format!("-({})", self.expr(T::Int, d)),
                20..=29 => format!(
                    "{}.size()",
                    self.expr_of(&[T::Str, T::List, T::Map, T::Set, T::Bytes], d)
                ),
                30..=39 => format!("int({})", self.expr_of(&[T::Float, T::Str, T::Int], d)),
                40..=44 => format!("math.abs({})", self.expr(T::Int, d)),
                45..=49 => format!("math.round({})", self.expr_of(&[T::Float, T::Int], d)),
                50..=59 => {
                    let m = *self.rng.pick(&[
                        "year",
                        "month",
                        "day",
                        "hours",
                        "minutes",
                        "seconds",
                        "nanos",
                        "toMillis",
                        "dayOfWeek",
                        "dayOfYear",
                    ]);
                    format!("{}.{m}()", self.expr(T::Ts, d))
                }
                60..=64 => {
                    let m = *self.rng.pick(&["seconds", "nanos"]);
                    format!("{}.{m}()", self.expr(T::Dur, d))
                }
                65..=74 => format!("{}[{}]", self.expr(T::List, d), self.expr(T::Int, d)),
                75..=79 => format!(
                    "{}.get('n', {})",
                    self.expr(T::Map, d),
                    self.expr(T::Int, d)
                ),
                80..=89 => format!(
                    "({} ? {} : {})",
                    self.expr(T::Bool, d),
                    self.expr(T::Int, d),
                    self.expr(T::Int, d)
                ),
                _ => format!("twice({})", self.expr(T::Int, d)),
            },
            T::Float => match r {
                0..=19 => {
                    let op = *self.rng.pick(&["+", "-", "*", " / ", "%"]);
                    let (a, b) = (self.expr_of(&[T::Float, T::Int], d), self.expr(T::Float, d));
                    format!("({a} {op} {b})")
                }
                20..=29 => format!("float({})", self.expr_of(&[T::Int, T::Str, T::Float], d)),
                30..=49 => {
                    let f = *self
                        .rng
                        .pick(&["math.floor", "math.ceil", "math.sqrt", "math.abs"]);
                    format!("{f}({})", self.expr_of(&[T::Float, T::Int], d))
                }
                50..=59 => format!(
                    "math.pow({}, {})",
                    self.expr_of(&[T::Float, T::Int], d),
                    self.expr_of(&[T::Float, T::Int], d)
                ),
                60..=69 => {
                    let m = *self.rng.pick(&["latitude()", "longitude()"]);
                    format!("{}.{m}", self.expr(T::LatLng, d))
                }
                70..=79 => format!(
                    "{}.distance({})",
                    self.expr(T::LatLng, d),
                    self.expr(T::LatLng, d)
                ),
                _ => format!("-({})", self.expr(T::Float, d)),
            },
            T::Str => match r {
                0..=14 => format!("({} + {})", self.expr(T::Str, d), self.expr(T::Str, d)),
                15..=29 => {
                    let m = *self.rng.pick(&["lower()", "upper()", "trim()"]);
                    format!("{}.{m}", self.expr(T::Str, d))
                }
                30..=39 => {
                    let (re, rep) = *self.rng.pick(&[
                        ("'a'", "'b'"),
                        ("'(l+)'", "'<$1>'"),
                        ("'o'", "'$'"),
                        ("'[aeiou]'", "'\\\\$'"),
                        ("'\\\\s'", "'_'"),
                        ("'(?P<w>o)'", "'${w}${w}'"),
                        ("'x'", "'$9'"),
                        ("''", "'-'"),
                        ("'\\\\w+'", "'W'"),
                    ]);
                    format!("{}.replace({re}, {rep})", self.expr(T::Str, d))
                }
                40..=49 => format!("{}[{}]", self.expr(T::Str, d), self.expr(T::Int, d)),
                50..=59 => {
                    let a = self.slice_bound(d);
                    let b = self.slice_bound(d);
                    format!("{}[{a}:{b}]", self.expr(T::Str, d))
                }
                60..=74 => format!("string({})", self.expr_of(TYPES, d)),
                75..=84 => format!("{}.join({})", self.expr(T::List, d), self.expr(T::Str, d)),
                85..=89 => {
                    let m = *self.rng.pick(&["toBase64()", "toHexString()"]);
                    format!("{}.{m}", self.expr(T::Bytes, d))
                }
                _ => format!(
                    "({} ? {} : {})",
                    self.expr(T::Bool, d),
                    self.expr(T::Str, d),
                    self.expr(T::Str, d)
                ),
            },
            T::Bytes => match r {
                0..=39 => format!("{}.toUtf8()", self.expr(T::Str, d)),
                _ => {
                    let h = *self.rng.pick(&["md5", "sha256", "crc32", "crc32c"]);
                    format!("hashing.{h}({})", self.expr_of(&[T::Str, T::Bytes], d))
                }
            },
            T::List => match r {
                0..=14 => format!(
                    "{}.concat({})",
                    self.expr(T::List, d),
                    self.expr(T::List, d)
                ),
                15..=24 => format!(
                    "{}.removeAll({})",
                    self.expr(T::List, d),
                    self.expr(T::List, d)
                ),
                25..=34 => {
                    let a = self.slice_bound(d);
                    let b = self.slice_bound(d);
                    format!("{}[{a}:{b}]", self.expr(T::List, d))
                }
                35..=49 => {
                    let re = *self
                        .rng
                        .pick(&["','", "'\\\\s+'", "''", "'b'", "'(,)'", "'x*'"]);
                    format!("{}.split({re})", self.expr(T::Str, d))
                }
                50..=64 => {
                    let m = *self.rng.pick(&["keys()", "values()"]);
                    format!("{}.{m}", self.expr(T::Map, d))
                }
                65..=74 => format!("({} + {})", self.expr(T::List, d), self.expr(T::List, d)),
                _ => {
                    let n = self.rng.below(3);
                    let items: Vec<String> = (0..n)
                        .map(|_| {
                            let t = *self.rng.pick(TYPES);
                            self.expr(t, d)
                        })
                        .collect();
                    format!("[{}]", items.join(", "))
                }
            },
            T::Map => match r {
                0..=29 => {
                    let t = *self.rng.pick(TYPES);
                    let k = *self.rng.pick(&["'a'", "'b'", "'n'"]);
                    format!("{{{k}: {}, 'c': 1}}", self.expr(t, d))
                }
                30..=49 => {
                    let k = *self.rng.pick(&[
                        "'m'",
                        "['m', 'deep']",
                        "'nope'",
                        "['m', 'x', 'y']",
                        "[]",
                    ]);
                    format!("{}.get({k}, {{}})", self.expr(T::Map, d))
                }
                _ => self.leaf(T::Map),
            },
            T::Set => match r {
                0..=29 => format!("{}.toSet()", self.expr(T::List, d)),
                30..=59 => {
                    let m = *self.rng.pick(&["union", "intersection", "difference"]);
                    let arg = if self.rng.chance(80) { T::Set } else { T::List };
                    format!("{}.{m}({})", self.expr(T::Set, d), self.expr(arg, d))
                }
                _ => {
                    let m = *self.rng.pick(&[
                        "addedKeys()",
                        "removedKeys()",
                        "changedKeys()",
                        "unchangedKeys()",
                        "affectedKeys()",
                    ]);
                    format!(
                        "{}.diff({}).{m}",
                        self.expr(T::Map, d),
                        self.expr(T::Map, d)
                    )
                }
            },
            T::Ts => match r {
                0..=39 => {
                    let op = *self.rng.pick(&["+", "-"]);
                    format!("({} {op} {})", self.expr(T::Ts, d), self.expr(T::Dur, d))
                }
                40..=59 => format!("{}.date()", self.expr(T::Ts, d)),
                _ => self.leaf(T::Ts),
            },
            T::Dur => match r {
                0..=29 => {
                    let op = *self.rng.pick(&["+", "-"]);
                    format!("({} {op} {})", self.expr(T::Dur, d), self.expr(T::Dur, d))
                }
                30..=49 => format!("({} - {})", self.expr(T::Ts, d), self.expr(T::Ts, d)),
                50..=59 => format!("duration.abs({})", self.expr(T::Dur, d)),
                60..=69 => format!("{}.time()", self.expr(T::Ts, d)),
                70..=79 => format!("-({})", self.expr(T::Dur, d)),
                80..=89 => format!("({} * {})", self.expr(T::Dur, d), self.expr(T::Int, d)),
                _ => self.leaf(T::Dur),
            },
            T::LatLng => self.leaf(T::LatLng),
            T::Path => match r {
                0..=29 => format!("/a/$({})", self.expr_of(TYPES, d)),
                30..=49 => {
                    let a = self.slice_bound(d);
                    let b = self.slice_bound(d);
                    format!("{}[{a}:{b}]", self.expr(T::Path, d))
                }
                50..=59 => format!("{}.bind({})", self.expr(T::Path, d), self.expr(T::Map, d)),
                _ => self.leaf(T::Path),
            },
        }
    }

    fn slice_bound(&mut self, d: u32) -> String {
        if self.rng.chance(20) {
            "null".to_string()
        } else if self.rng.chance(60) {
            self.rng.pick(&["0", "1", "2", "3", "-1", "5"]).to_string()
        } else {
            self.expr(T::Int, d)
        }
    }

    /// A leaf of type `t`: a literal, or something read from the request or resource.
    fn leaf(&mut self, t: T) -> String {
        let from_doc = self.scope.resource && self.rng.chance(40);
        let from_in = self.scope.incoming && self.rng.chance(30);
        let doc = if from_in {
            "request.resource"
        } else {
            "resource"
        };
        if from_doc || from_in {
            let field = match t {
                T::Bool => Some("t"),
                T::Int => Some(*self.rng.pick(&["n", "neg", "big"])),
                T::Float => Some(*self.rng.pick(&["f", "whole"])),
                T::Str => Some(*self.rng.pick(&["s", "u", "e", "owner"])),
                T::Bytes => Some("bin"),
                T::List => Some(*self.rng.pick(&["tags", "nums", "mixed"])),
                T::Map => Some(*self.rng.pick(&["m", "m.deep"])),
                T::Ts => Some("created"),
                T::LatLng => Some("geo"),
                T::Path => Some("ref"),
                _ => None,
            };
            if let Some(f) = field {
                if self.rng.chance(20) {
                    return format!("{doc}.data['{}']", f.replace(".", "']['"));
                }
                return format!("{doc}.data.{f}");
            }
        }
        if self.rng.chance(12) {
            let auth = match t {
                T::Str => Some(*self.rng.pick(&[
                    "request.auth.uid",
                    "request.auth.token.email",
                    "request.method",
                    "d",
                    "string(request.path)",
                    "resource.id",
                ])),
                T::Int => Some("request.auth.token.level"),
                T::Float => Some("request.auth.token.score"),
                T::Bool => Some("request.auth.token.admin"),
                T::List => Some(*self.rng.pick(&[
                    "request.auth.token.roles",
                    "request.auth.token['https://app.example/roles']",
                ])),
                T::Map => Some(*self.rng.pick(&["request.auth.token", "resource.data"])),
                T::Path => Some(*self.rng.pick(&["request.path", "resource.__name__"])),
                _ => None,
            };
            if let Some(a) = auth {
                return a.to_string();
            }
        }
        self.lit(t)
    }

    /// A bool expression: a comparison, a predicate, or a combination.
    fn boolean(&mut self, d: u32) -> String {
        let r = self.rng.below(100);
        match r {
            0..=11 => {
                let t = *self.rng.pick(TYPES);
                let e = self.expr(t, d);
                format!("({e} == {e})")
            }
            12..=21 => {
                let t = *self.rng.pick(TYPES);
                let e = self.expr(t, d);
                let ty = if self.rng.chance(60) {
                    type_name(t)
                } else {
                    self.rng.pick(&[
                        "number",
                        "int",
                        "float",
                        "string",
                        "map",
                        "list",
                        "set",
                        "bool",
                        "path",
                        "map_diff",
                        "constraint",
                        "timestamp",
                        "bytes",
                        "latlng",
                        "duration",
                    ])
                };
                format!("({e} is {ty})")
            }
            22..=39 => {
                let t = *self.rng.pick(&[
                    T::Int,
                    T::Float,
                    T::Str,
                    T::Int,
                    T::Str,
                    T::Ts,
                    T::Dur,
                    T::Bytes,
                    T::List,
                    T::Bool,
                ]);
                let op = *self.rng.pick(&["==", "!=", "<", "<=", ">", ">="]);
                let a = self.expr(t, d);
                let b = if self.rng.chance(60) {
                    self.lit(t)
                } else {
                    self.expr(t, d)
                };
                let b = if self.rng.chance(10) {
                    let t2 = *self.rng.pick(TYPES);
                    self.expr(t2, d)
                } else {
                    b
                };
                format!("({a} {op} {b})")
            }
            40..=49 => {
                let container = *self.rng.pick(&[T::List, T::Set, T::Map, T::List]);
                let t = *self.rng.pick(&[T::Int, T::Float, T::Str]);
                format!("({} in {})", self.expr(t, d), self.expr(container, d))
            }
            50..=59 => {
                let recv = *self.rng.pick(&[T::List, T::Set]);
                let m = *self.rng.pick(&["hasAll", "hasAny", "hasOnly"]);
                let arg = *self.rng.pick(&[T::List, T::List, T::Set]);
                format!("{}.{m}({})", self.expr(recv, d), self.expr(arg, d))
            }
            60..=67 => {
                let re = *self.rng.pick(&[
                    "'\\\\w+'",
                    "'\\\\d'",
                    "'.*'",
                    "'a.*'",
                    "'[a-z]+'",
                    "'\\\\s'",
                    "'.*\\\\bW.*'",
                    "'é'",
                    "'(a|b)+'",
                    "'[[:alpha:]]+'",
                    "'x{2}'",
                    "'.'",
                    "'..'",
                    "'H.*'",
                    "'[^a]*'",
                ]);
                if self.rng.chance(15) {
                    // A pattern computed at run time (an invalid one fails only then).
                    let dynamic =
                        *self
                            .rng
                            .pick(&["'(' + ''", "'a' + '*'", "'\\\\w' + '+'", "'[' + 'a'"]);
                    format!("{}.matches({dynamic})", self.expr(T::Str, d))
                } else {
                    format!("{}.matches({re})", self.expr(T::Str, d))
                }
            }
            68..=71 => format!("math.isNaN({})", self.expr_of(&[T::Float, T::Int], d)),
            72..=77 => {
                let op = *self.rng.pick(&["&&", "||"]);
                format!("({} {op} {})", self.boolean(d), self.boolean(d))
            }
            78..=80 => format!("!{}", self.boolean(d)),
            81..=84 => format!(
                "({} ? {} : {})",
                self.boolean(d),
                self.boolean(d),
                self.boolean(d)
            ),
            85..=89 => {
                let f = *self.rng.pick(&[
                    "lazy(null.x, true)",
                    "lazy(resource.data.missing, false)",
                    "lazy(true, null.x)",
                    "pick(true, true, null.x)",
                    "pick(false, null.x, true)",
                    "unusedLet(true)",
                    "usesLet('ab')",
                    "usesLet(null)",
                    "isOwner()",
                    "wrongArity(1)",
                    "pick(true)",
                    "deep(3)",
                ]);
                f.to_string()
            }
            90..=94 => {
                let p = *self.rng.pick(&[
                    "/databases/$(database)/documents/other/here",
                    "/databases/$(database)/documents/other/none",
                    "/databases/$(database)/documents/other",
                    "/databases/other/documents/other/here",
                    "/a/b",
                ]);
                let f = *self
                    .rng
                    .pick(&["exists", "get", "existsAfter", "getAfter", "value"]);
                if f.starts_with("exists") {
                    format!("{f}({p})")
                } else {
                    format!("{f}({p}).data.v == 1")
                }
            }
            _ => self.expr(T::Bool, 0),
        }
    }
}

const FUNCTIONS: &str = "    function lazy(a, b) { return b; }
    function pick(c, a, b) { return c ? a : b; }
    function twice(x) { let y = x + x; return y; }
    function unusedLet(x) { let bad = null.x; return x; }
    function usesLet(x) { let s = x.size(); return s > 1; }
    function isOwner() { return request.auth.uid == resource.data.owner; }
    function wrongArity(a, b) { return true; }
    function deep(n) { return deeper(n + 1) && n > 0; }
    function deeper(n) { let m = n * 2; return m > 2; }
";

/// Expression suites: one match per condition, a get (or create, with `request.resource`) of
/// a document holding every type.
fn expr_suite(rng: &mut Rng, i: usize) -> Suite {
    let write = i % 4 == 3;
    let scope = Scope {
        resource: !write,
        incoming: write,
    };
    let mut rules = String::from(HEADER);
    rules.push_str(FUNCTIONS);
    rules.push_str("    match /other/{id} { allow read: if true; }\n");
    let mut cases = Vec::new();
    let mut docs = vec![("other/here".to_string(), json!({"v": 1}))];
    let n = 40;
    let all_auth = auths();
    for k in 0..n {
        let mut g = Expr {
            rng: &mut *rng,
            scope,
        };
        let cond = g.boolean(3);
        let method = if write { "create, update" } else { "get" };
        rules.push_str(&format!(
            "    match /e{k}/{{d}} {{ allow {method}: if {cond}; }}\n"
        ));
        let auth = rng.pick(&all_auth).clone();
        if write {
            cases.push(Case {
                name: format!("e{k} create"),
                auth,
                method: "create",
                path: format!("e{k}/new{k}"),
                data: Some(rich_doc()),
                query: None,
            });
        } else {
            docs.push((format!("e{k}/doc"), rich_doc()));
            cases.push(Case {
                name: format!("e{k} get"),
                auth,
                method: "get",
                path: format!("e{k}/doc"),
                data: None,
                query: None,
            });
        }
    }
    rules.push_str(FOOTER);
    Suite {
        name: format!("expressions {i}"),
        rules,
        docs,
        cases,
    }
}

mod suites;

use suites::{budget_suite, compile_suites, fixed_suites, list_suite, path_suite, write_suite};
