//! The repository's house rules, checked on every test run: each Rust file opens with a `//!`
//! comment saying what it is for, no test is `#[ignore]`d, no file grows past 1,000 lines,
//! comments do not send the reader to documents outside the repository, and ARCHITECTURE.md's
//! list of crate edges is exactly the workspace's dependency graph.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The longest a Rust file may be before it is split.
const MAX_LINES: usize = 1_000;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `crates/`, skipping build output.
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            if p.is_dir() {
                if name != "target" && name != "node_modules" && name != "corpus" {
                    walk(&p, out);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("crates"), &mut out);
    out.sort();
    assert!(out.len() > 100, "found only {} Rust files", out.len());
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(repo()).unwrap_or(p).display().to_string()
}

#[test]
fn rust_files_open_with_a_doc_comment_are_short_and_ignore_no_test() {
    // Built from pieces so that this file does not match itself.
    let ignore_attr = ["#[", "ignore"].concat();
    let outside = [
        ["design", ".md"].concat(),
        ["shared", "/reference"].concat(),
    ];
    let mut problems = Vec::new();
    for p in rust_files() {
        let text = std::fs::read_to_string(&p).unwrap();
        let name = relative(&p);
        if !text.starts_with("//!") {
            problems.push(format!("{name}: does not open with a `//!` comment"));
        }
        let lines = text.lines().count();
        if lines > MAX_LINES {
            problems.push(format!(
                "{name}: {lines} lines (at most {MAX_LINES}; split it)"
            ));
        }
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with(&ignore_attr) {
                problems.push(format!("{name}:{}: an ignored test", i + 1));
            }
            if t.starts_with("//") && outside.iter().any(|o| t.contains(o.as_str())) {
                problems.push(format!(
                    "{name}:{}: a comment cites a document outside the repository; say what it means",
                    i + 1
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The workspace's crates and the workspace crates each depends on (not dev-dependencies).
fn cargo_edges() -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(repo().join("crates")).unwrap().flatten() {
        let manifest = e.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let doc: toml::Table = text.parse().unwrap();
        let name = doc["package"]["name"].as_str().unwrap().to_string();
        let mut deps: Vec<String> = doc
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|d| {
                d.keys()
                    .filter(|k| k.starts_with("claimdb"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        deps.sort();
        out.insert(name, deps);
    }
    out
}

/// The edge list of ARCHITECTURE.md: lines "- `crate` → `dep`, `dep`" (or "→ nothing").
fn documented_edges() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("- `") else {
            continue;
        };
        let Some((name, deps)) = rest.split_once("` → ") else {
            continue;
        };
        let mut deps: Vec<String> = deps
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        deps.sort();
        out.insert(name.to_string(), deps);
    }
    out
}

#[test]
fn architecture_lists_every_crate_edge() {
    let cargo = cargo_edges();
    assert!(cargo.len() >= 9, "{cargo:?}");
    assert_eq!(
        documented_edges(),
        cargo,
        "ARCHITECTURE.md's edge list (left) differs from the Cargo manifests (right)"
    );
}
