//! The fuzz smoke run of `cargo test`: every committed corpus input of every target, then a
//! bounded number of deterministic mutations of them (bit flips, byte edits, splices), through
//! the same entry points the cargo-fuzz targets call. It keeps the findings of past long runs
//! fixed (each crash found became a corpus file) and catches a harness that no longer builds or
//! runs; the long coverage-guided runs are `cargo fuzz run` (README "Fuzzing").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// Mutated inputs per target; with the corpus this stays within a few seconds in a debug build.
const MUTATIONS: usize = 1_500;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// SplitMix64: a fixed sequence, so a failing mutation is reproducible from its index.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the grammars under test, so mutations reach past the first check.
const INTERESTING: &[&[u8]] = &[
    b"{",
    b"}",
    b"(",
    b")",
    b"[",
    b"]",
    b".",
    b"\"",
    b"'",
    b"\\",
    b"/",
    b"*",
    b"**",
    b"\0",
    b"==",
    b"&&",
    b"||",
    b"!",
    b"in",
    b"is",
    b"let",
    b"if",
    b"get(",
    b"exists(",
    b"\xff",
    b"9223372036854775807",
    b"-1",
    b"1e308",
    b"\"alg\"",
    b"\"kid\"",
    b"\"exp\"",
    b"null",
];

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = rng.below(8).min(out.len() - i);
                out.drain(i..i + n);
            }
            2 => {
                let i = rng.below(out.len() + 1);
                let ins = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(i..i, ins.iter().copied());
            }
            3 if !out.is_empty() => {
                // Repeat a slice: nesting and length limits.
                let i = rng.below(out.len());
                let n = rng.below(64).min(out.len() - i);
                let piece = out[i..i + n].repeat(1 + rng.below(40));
                out.splice(i..i, piece);
            }
            4 if !other.is_empty() => {
                let cut = rng.below(out.len() + 1);
                let from = rng.below(other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            _ => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.next() as u8);
            }
        }
    }
    out
}

fn run(target: &str, f: fn(&[u8])) {
    let inputs = corpus(target);
    assert!(
        !inputs.is_empty(),
        "corpus/{target} is empty; the smoke run would prove nothing"
    );
    for (path, bytes) in &inputs {
        let result = std::panic::catch_unwind(|| f(bytes));
        assert!(
            result.is_ok(),
            "{target}: corpus file {} failed",
            path.display()
        );
    }
    let mut rng = Rng(0x5EED_0000 ^ target.len() as u64);
    for i in 0..MUTATIONS {
        let (_, a) = &inputs[rng.below(inputs.len())];
        let (_, b) = &inputs[rng.below(inputs.len())];
        let input = mutate(&mut rng, a, b);
        let result = std::panic::catch_unwind(|| f(&input));
        assert!(
            result.is_ok(),
            "{target}: mutation {i} failed; input (save it under corpus/{target}/ once fixed): {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn rules_parse_corpus_and_mutations() {
    run("rules_parse", claimdb_fuzz::rules_parse);
}

#[test]
fn rules_evaluate_corpus_and_mutations() {
    run("rules_evaluate", claimdb_fuzz::rules_evaluate);
}

#[test]
fn token_verify_corpus_and_mutations() {
    run("token_verify", claimdb_fuzz::token_verify);
}

/// The cargo-fuzz targets and this smoke run cover the same list.
#[test]
fn every_target_has_a_corpus() {
    for (name, _) in claimdb_fuzz::TARGETS {
        assert!(!corpus(name).is_empty(), "{name}");
    }
}
