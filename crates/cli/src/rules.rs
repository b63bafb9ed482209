//! `claimdb rules check FILE` and `claimdb rules test RULES CASES`: offline front ends to the
//! `rules` crate. Exit 0 when the file compiles / every case passes, 1 when not (a negative
//! verdict), 2 when a file cannot be read or the case file is malformed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use claimdb_rules::{Ruleset, TestCase, render, render_report, render_warnings, run_cases};

/// Reads and compiles a rules file; `Err` carries the rendered diagnostics.
fn compile(path: &Path) -> anyhow::Result<Result<Ruleset, String>> {
    let source = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read rules file {}", path.display()))?;
    Ok(Ruleset::compile(&source).map_err(|diagnostics| {
        format!(
            "{}: {} error(s)\n\n{}",
            path.display(),
            diagnostics.len(),
            render(&diagnostics)
        )
    }))
}

pub(crate) fn check(path: &Path) -> anyhow::Result<ExitCode> {
    match compile(path)? {
        Ok(rules) => {
            println!(
                "{}: ok ({} allow statements)",
                path.display(),
                rules.allow_statements().len()
            );
            // Firebase compiles these too; the rules fail where they use them.
            if !rules.warnings().is_empty() {
                eprintln!("{}", render_warnings(rules.warnings()));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(report) => {
            eprintln!("{report}");
            Ok(ExitCode::from(1))
        }
    }
}

pub(crate) fn test(rules_path: &Path, cases_path: &Path) -> anyhow::Result<ExitCode> {
    let rules = match compile(rules_path)? {
        Ok(rules) => rules,
        Err(report) => {
            eprintln!("{report}");
            return Ok(ExitCode::from(1));
        }
    };
    let text = std::fs::read_to_string(cases_path)
        .with_context(|| format!("cannot read test cases {}", cases_path.display()))?;
    let value = parse_cases(&text)
        .with_context(|| format!("{} is not valid YAML or JSON", cases_path.display()))?;
    let cases = TestCase::all_from_json(&value)
        .map_err(|e| anyhow::anyhow!("{}: {e}", cases_path.display()))?;
    let (outcomes, coverage) = run_cases(&rules, &cases);
    let (report, all_passed) = render_report(&outcomes, &coverage);
    print!("{report}");
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reads a case file: JSON first, then YAML. JSON is valid YAML, but YAML escapes are 16-bit
/// or 32-bit code points, so JSON's escaped surrogate pairs (`"\ud83d\ude00"`) only read as
/// JSON.
fn parse_cases(text: &str) -> anyhow::Result<serde_json::Value> {
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(json) => serde_norway::from_str(text).map_err(|yaml| {
            let looks_like_json = text.trim_start().starts_with(['{', '[']);
            if looks_like_json {
                anyhow::anyhow!("{json}")
            } else {
                anyhow::anyhow!("{yaml}")
            }
        }),
    }
}
