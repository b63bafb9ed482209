//! Managing the rules: reading the active ones, setting new ones, the stored versions and
//! rolling back — through the admin API (each operation checks the admin condition) and, for
//! the CLI, without a request (`set_stored_rules`, `rollback_stored_rules`) — and following
//! the newest stored version on every node.
//!
//! Precedence is explicit ([`RulesSource`]): with a rules file, the file is in force and
//! setting rules through the API is refused; with the database, the newest stored version is
//! in force everywhere, and a configured file only seeds version 1 of an empty database.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use claimdb_rules::Ruleset;

use crate::admin::compile_rules;
use crate::context::RequestContext;
use crate::engine::{Engine, RulesSource};
use crate::error::EngineError;
use crate::rules_store::{self, StoredRules};

/// The active rules, for `GET /v1/admin/rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesInfo {
    pub source: String,
    /// Where they came from: a file name, `rules v3`, `default (locked)`.
    pub origin: String,
    /// `file` or `database`: where rules are managed on this server.
    pub managed_in: &'static str,
    /// The stored version in force, with `database`.
    pub version: Option<u64>,
}

impl Engine {
    /// The engine clock's time in Unix milliseconds, for stored rules versions.
    fn now_ms(&self) -> i64 {
        self.clock()
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// The active rules and where they are managed.
    pub async fn admin_get_rules(&self, ctx: &RequestContext) -> Result<RulesInfo, EngineError> {
        self.authorize_admin(ctx).await?;
        let rules = self.rules();
        Ok(RulesInfo {
            source: rules.ruleset.source().to_owned(),
            origin: rules.origin.clone(),
            managed_in: match self.rules_source() {
                RulesSource::File(_) => "file",
                RulesSource::Database => "database",
            },
            version: rules.version,
        })
    }

    /// Compiles `source` and, if it compiles, stores it as the next version and puts it in
    /// force at once (other nodes follow within seconds); otherwise refuses it with the compile
    /// errors and the running rules stay. Refused when the rules come from a file.
    pub async fn admin_put_rules(
        &self,
        ctx: &RequestContext,
        source: &str,
    ) -> Result<StoredRules, EngineError> {
        self.authorize_admin(ctx).await?;
        let stored = self.set_stored_rules(source, "admin API").await?;
        tracing::info!(request_id = %ctx.request_id, version = stored.version, "rules replaced through the admin API");
        Ok(stored)
    }

    /// Stored versions older than `before`, newest first.
    pub async fn admin_rules_versions(
        &self,
        ctx: &RequestContext,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredRules>, EngineError> {
        self.authorize_admin(ctx).await?;
        rules_store::list(&**self.store(), before, limit).await
    }

    /// One stored version.
    pub async fn admin_rules_version(
        &self,
        ctx: &RequestContext,
        version: u64,
    ) -> Result<StoredRules, EngineError> {
        self.authorize_admin(ctx).await?;
        rules_store::get(&**self.store(), version)
            .await?
            .ok_or_else(|| EngineError::not_found(format!("there is no rules version {version}")))
    }

    /// Puts the source of stored version `version` back in force, as a new version.
    pub async fn admin_rollback_rules(
        &self,
        ctx: &RequestContext,
        version: u64,
    ) -> Result<StoredRules, EngineError> {
        self.authorize_admin(ctx).await?;
        let stored = self.rollback_stored_rules(version, "admin API").await?;
        tracing::info!(request_id = %ctx.request_id, to = version, version = stored.version, "rules rolled back through the admin API");
        Ok(stored)
    }

    /// Stores `source` as the next version (if it compiles) and puts it in force here.
    /// `author` says who set it. Refused when the rules come from a file.
    pub async fn set_stored_rules(
        &self,
        source: &str,
        author: &str,
    ) -> Result<StoredRules, EngineError> {
        self.require_database_rules()?;
        let ruleset = compile_rules(source)?;
        let stored = rules_store::save(&**self.store(), source, author, self.now_ms()).await?;
        self.install_if_newer(ruleset, stored.version);
        Ok(stored)
    }

    /// Stores the source of version `version` as the next version and puts it in force here.
    pub async fn rollback_stored_rules(
        &self,
        version: u64,
        author: &str,
    ) -> Result<StoredRules, EngineError> {
        self.require_database_rules()?;
        let old = rules_store::get(&**self.store(), version)
            .await?
            .ok_or_else(|| {
                EngineError::not_found(format!("there is no rules version {version}"))
            })?;
        let ruleset = compile_rules(&old.source)?;
        let stored = rules_store::save(
            &**self.store(),
            &old.source,
            &format!("rollback to v{version} ({author})"),
            self.now_ms(),
        )
        .await?;
        self.install_if_newer(ruleset, stored.version);
        Ok(stored)
    }

    fn require_database_rules(&self) -> Result<(), EngineError> {
        match self.rules_source() {
            RulesSource::Database => Ok(()),
            RulesSource::File(path) => Err(EngineError::failed_precondition(format!(
                "the rules come from the file {} (rules_from = \"file\"): edit the file, which is \
                 reloaded when it changes, or set rules_from = \"database\" to manage rules \
                 through the API",
                path.display()
            ))),
        }
    }

    /// Installs a stored version unless a newer one is already in force (two concurrent sets:
    /// the higher version wins on every node).
    fn install_if_newer(&self, ruleset: Ruleset, version: u64) {
        if self.rules().version.is_none_or(|v| v < version) {
            self.install_rules_version(ruleset, version);
        }
    }

    /// With rules in the database: puts the newest stored version in force if it is not
    /// already. With an empty database, stores `seed` (a rules file's source and its name) as
    /// version 1 first, when given. Returns the version in force, if any. Does nothing with
    /// rules from a file.
    pub async fn load_stored_rules(
        &self,
        seed: Option<(&str, &str)>,
    ) -> Result<Option<u64>, EngineError> {
        if self.rules_source() != &RulesSource::Database {
            return Ok(None);
        }
        let store = &**self.store();
        let head = match rules_store::head(store).await? {
            Some(h) => h,
            None => match seed {
                Some((source, name)) => {
                    compile_rules(source)?;
                    rules_store::save(store, source, &format!("file {name}"), self.now_ms())
                        .await?
                        .version
                }
                None => return Ok(None),
            },
        };
        if self.rules().version == Some(head) {
            return Ok(Some(head));
        }
        let stored = rules_store::get(store, head).await?.ok_or_else(|| {
            EngineError::internal(format!("rules version {head} is named newest but missing"))
        })?;
        self.install_if_newer(compile_rules(&stored.source)?, head);
        Ok(Some(head))
    }

    /// Follows the newest stored version every `every` until the engine is dropped: a version
    /// stored through another node or the CLI is in force here within `every`. A version that
    /// does not compile here (stored by a newer claimdb?) is logged once and skipped.
    pub fn spawn_rules_follower(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut refused: Option<u64> = None;
            loop {
                tokio::time::sleep(every).await;
                let Some(engine) = weak.upgrade() else { return };
                let head = match rules_store::head(&**engine.store()).await {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::warn!(
                            "reading the stored rules failed; the running rules stay: {e}"
                        );
                        continue;
                    }
                };
                if head.is_none() || head == engine.rules().version || head == refused {
                    continue;
                }
                match engine.load_stored_rules(None).await {
                    Ok(v) => tracing::info!(version = v, "stored rules put in force"),
                    Err(e) => {
                        refused = head;
                        tracing::error!(
                            version = head,
                            "stored rules refused; the running rules stay: {e}"
                        );
                    }
                }
            }
        })
    }
}
