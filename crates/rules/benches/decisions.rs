//! Decision throughput for the example rule sets (no `get()`): decisions/s and median ns per
//! decision, printed as a Markdown table for BENCHMARKS.md. Budget: median
//! ≤ 1 µs per decision. Run with `cargo bench -p claimdb-rules --bench decisions`; under
//! `cargo test` it only runs a few iterations as a smoke test. `--only <n>` runs just the n-th
//! case (0-based), e.g. under `valgrind --tool=callgrind` for per-decision instruction counts.

use std::hint::black_box;
use std::time::Instant;

use claimdb_model::{CollectionPath, DocPath, Map, Timestamp, Value};
use claimdb_rules::{Filter, FilterOp, Method, NoDocuments, Query, Request, Ruleset, Target};

fn rules(name: &str) -> Ruleset {
    let path = format!("{}/../../examples/{name}.rules", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap_or_default();
    match Ruleset::compile(&src) {
        Ok(r) => r,
        Err(d) => {
            eprintln!("{name}: {}", claimdb_rules::render(&d));
            std::process::exit(2);
        }
    }
}

fn map(pairs: &[(&str, Value)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn doc_request(method: Method, path: &str, uid: Option<(&str, Map)>) -> Request {
    let target = Target::Doc(DocPath::parse(path).unwrap_or_else(|_| std::process::exit(2)));
    let mut r = Request::new(method, target, Timestamp::now());
    if let Some((uid, token)) = uid {
        r = r.with_auth(uid, token);
    }
    r
}

fn cases() -> Vec<(&'static str, &'static str, Ruleset, Request)> {
    let s = |x: &str| Value::String(x.into());
    let mut out = Vec::new();
    let movies = rules("movies");
    out.push((
        "movies",
        "get, signed in",
        movies.clone(),
        doc_request(Method::Get, "movies/m1", Some(("u1", Map::new()))),
    ));
    out.push((
        "movies",
        "create, moderator",
        movies,
        doc_request(
            Method::Create,
            "movies/m2",
            Some(("u2", map(&[("moderator", Value::Bool(true))]))),
        ),
    ));
    let owner = rules("owner");
    out.push((
        "owner",
        "get, owner",
        owner.clone(),
        doc_request(Method::Get, "users/alice", Some(("alice", Map::new()))),
    ));
    out.push((
        "owner",
        "get, stranger (deny)",
        owner,
        doc_request(Method::Get, "users/alice", Some(("bob", Map::new()))),
    ));
    let roles = rules("roles");
    let mut r = doc_request(
        Method::Update,
        "articles/a1",
        Some((
            "e",
            map(&[("roles", Value::Map(map(&[("editor", Value::Bool(true))])))]),
        )),
    );
    r.existing = Some(map(&[("published", Value::Bool(false))]));
    out.push(("roles", "update, editor", roles.clone(), r));
    let mut list = Request::new(
        Method::List,
        Target::Collection(
            CollectionPath::parse("articles").unwrap_or_else(|_| std::process::exit(2)),
        ),
        Timestamp::now(),
    );
    list.query = Some(Query {
        filters: vec![Filter {
            field: "published".into(),
            op: FilterOp::Eq,
            value: Value::Bool(true),
        }],
        ..Query::default()
    });
    out.push(("roles", "list, published filter", roles, list));
    let fields = rules("profile-fields");
    let mut r = doc_request(Method::Update, "profiles/p", Some(("p", Map::new())));
    r.existing = Some(map(&[
        ("name", s("P")),
        ("bio", s("old")),
        ("role", s("user")),
    ]));
    r.incoming = Some(map(&[
        ("name", s("P")),
        ("bio", s("new")),
        ("role", s("user")),
    ]));
    out.push(("profile-fields", "update, diff().affectedKeys()", fields, r));
    out
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, per_round) = if full { (200, 2_000) } else { (3, 10) };
    let args: Vec<String> = std::env::args().collect();
    let only: Option<usize> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok());
    println!("| rule set | request | allowed | decisions/s | median ns/decision |");
    println!("|---|---|---|---|---|");
    for (i, (set, what, rules, request)) in cases().into_iter().enumerate() {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let allowed = rules.evaluate(&request, &NoDocuments).allowed;
        let mut samples = Vec::with_capacity(rounds);
        let total = Instant::now();
        for _ in 0..rounds {
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(rules.evaluate(black_box(&request), &NoDocuments));
            }
            samples.push(start.elapsed().as_nanos() as f64 / per_round as f64);
        }
        let elapsed = total.elapsed().as_secs_f64();
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        let rate = (rounds * per_round) as f64 / elapsed;
        println!("| {set} | {what} | {allowed} | {rate:.0} | {median:.0} |");
    }
}
