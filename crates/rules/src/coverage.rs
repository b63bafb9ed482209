//! Rule coverage for test runs: every `allow` statement of a ruleset, and whether any decision
//! recorded so far saw its condition true, false or failing.
//!
//! It reads only [`Decision::tried`], so it costs nothing during normal evaluation; a test runner
//! (`claimdb rules test`) records each case's decision and prints the report.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::compile::Ruleset;
use crate::request::{Decision, Outcome};

/// One `allow` statement of a ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowStatement {
    /// Matches [`crate::Tried::allow`].
    pub id: u32,
    pub line: usize,
    /// The match pattern it belongs to.
    pub pattern: Arc<str>,
    /// The methods as written (`read, write`).
    pub methods: Arc<str>,
    /// The condition as written; `None` for a bare `allow m;`.
    pub condition: Option<String>,
}

/// Coverage of one allow statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageLine {
    pub allow: AllowStatement,
    pub ever_true: bool,
    pub ever_false: bool,
    pub ever_error: bool,
}

impl CoverageLine {
    /// True and false were both seen (a bare allow only needs to have granted once).
    pub fn is_complete(&self) -> bool {
        self.ever_true && (self.ever_false || self.allow.condition.is_none())
    }
}

impl Ruleset {
    /// Every allow statement, in source order.
    pub fn allow_statements(&self) -> Vec<AllowStatement> {
        let src = self.source();
        let mut out: Vec<AllowStatement> = self
            .program
            .matches
            .iter()
            .flat_map(|m| {
                m.allows.iter().map(|a| AllowStatement {
                    id: a.id,
                    line: a.line,
                    pattern: m.text.clone(),
                    methods: a.methods_text.clone(),
                    condition: a.condition.as_ref().map(|c| {
                        src.get(c.span.start as usize..c.span.end as usize)
                            .unwrap_or("")
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    }),
                })
            })
            .collect();
        out.sort_by_key(|a| a.id);
        out
    }
}

/// Accumulates which outcomes each allow statement has produced.
#[derive(Debug, Clone)]
pub struct Coverage {
    lines: BTreeMap<u32, CoverageLine>,
}

impl Coverage {
    pub fn new(rules: &Ruleset) -> Coverage {
        let lines = rules
            .allow_statements()
            .into_iter()
            .map(|a| {
                (
                    a.id,
                    CoverageLine {
                        allow: a,
                        ever_true: false,
                        ever_false: false,
                        ever_error: false,
                    },
                )
            })
            .collect();
        Coverage { lines }
    }

    pub fn record(&mut self, decision: &Decision) {
        for t in &decision.tried {
            if let Some(line) = self.lines.get_mut(&t.allow) {
                match t.outcome {
                    Outcome::True => line.ever_true = true,
                    Outcome::False => line.ever_false = true,
                    Outcome::Error(_) => {
                        line.ever_false = true;
                        line.ever_error = true;
                    }
                }
            }
        }
    }

    /// One line per allow statement, in source order.
    pub fn report(&self) -> Vec<CoverageLine> {
        self.lines.values().cloned().collect()
    }
}
