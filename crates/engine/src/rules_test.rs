//! Trying rules without putting them in force, for the admin API (and so the web console):
//! compiling a source to see its errors and warnings at line and column
//! ([`Engine::admin_check_rules`]), and running a rules test file — the case format of
//! `claimdb rules test` — against a source or the active rules, with coverage
//! ([`Engine::admin_test_rules`]). Both check the admin condition first; neither stores or
//! installs anything, and neither reads the store (a case's documents are its `existing`).

use claimdb_rules::{CaseOutcome, CoverageLine, Diagnostic, Ruleset, TestCase, run_cases};
use serde_json::Value as Json;

use crate::context::RequestContext;
use crate::engine::Engine;
use crate::error::EngineError;

/// The most cases one test run may hold: each is a full decision, and the run is one request.
pub const MAX_TEST_CASES: usize = 1000;

/// What compiling a rules source found.
#[derive(Debug, Clone)]
pub struct RulesCheck {
    /// Errors that stop the source from compiling (empty when it compiles).
    pub errors: Vec<Diagnostic>,
    /// Warnings of a source that compiles (unknown names and functions, as Firebase has them).
    pub warnings: Vec<Diagnostic>,
    /// How many `allow` statements it has (0 when it does not compile).
    pub allow_statements: usize,
}

/// The outcome of a test run.
#[derive(Debug, Clone)]
pub struct RulesTestRun {
    /// Which rules ran: `request` for a source sent with the run, else the active rules' origin.
    pub rules: String,
    pub outcomes: Vec<CaseOutcome>,
    /// One line per allow statement, in source order.
    pub coverage: Vec<CoverageLine>,
    /// The text `claimdb rules test` prints for the same run.
    pub report: String,
}

impl Engine {
    /// Compiles `source` and reports its errors or warnings; nothing is stored or installed.
    pub async fn admin_check_rules(
        &self,
        ctx: &RequestContext,
        source: &str,
    ) -> Result<RulesCheck, EngineError> {
        self.authorize_admin(ctx).await?;
        Ok(match Ruleset::compile(source) {
            Ok(rules) => RulesCheck {
                errors: Vec::new(),
                warnings: rules.warnings().to_vec(),
                allow_statements: rules.allow_statements().len(),
            },
            Err(errors) => RulesCheck {
                errors,
                warnings: Vec::new(),
                allow_statements: 0,
            },
        })
    }

    /// Runs test cases (`{"cases": [...]}` or a bare list, as `claimdb rules test` reads them)
    /// against `source`, or the active rules when `None`. A source that does not compile is
    /// `invalid-argument` with its errors, like setting it would be.
    pub async fn admin_test_rules(
        &self,
        ctx: &RequestContext,
        source: Option<&str>,
        cases: &Json,
    ) -> Result<RulesTestRun, EngineError> {
        self.authorize_admin(ctx).await?;
        let (rules, origin) = match source {
            Some(source) => (crate::admin::compile_rules(source)?, "request".to_owned()),
            None => {
                let active = self.rules();
                (active.ruleset.clone(), active.origin.clone())
            }
        };
        let cases = TestCase::all_from_json(cases).map_err(EngineError::invalid_argument)?;
        if cases.len() > MAX_TEST_CASES {
            return Err(EngineError::invalid_argument(format!(
                "{} test cases; at most {MAX_TEST_CASES} run in one request",
                cases.len()
            )));
        }
        // Every case is a full decision: keep them off the async worker threads.
        let (outcomes, coverage) = tokio::task::spawn_blocking(move || run_cases(&rules, &cases))
            .await
            .map_err(|e| EngineError::internal(format!("rules test task: {e}")))?;
        let (report, _) = claimdb_rules::render_report(&outcomes, &coverage);
        Ok(RulesTestRun {
            rules: origin,
            outcomes,
            coverage: coverage.report(),
            report,
        })
    }
}
