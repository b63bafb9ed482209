//! [`Engine`]: what every operation shares — the store, the active rules, the authenticator,
//! the audit log and the clock — and the one decision path: `Engine::check` decides a request
//! with the active rules and audits it, `Engine::audited` makes an allowed write's decisions
//! durable with its commit. The operations themselves are one entry each, by kind: documents
//! (`documents.rs`: get, create, set, update, delete), lists (`list.rs`), queries (`query.rs`),
//! batches (`batch.rs`), admin (`admin.rs`, `rules_admin.rs`), sign-in (`signin.rs`); who is
//! asking is `auth.rs`'s.
//!
//! Writes are decided against the document states they will apply to: every document the rules
//! looked at is pinned by a read check in the same atomic `commit`, and a concurrent
//! change makes the engine decide again on the new state. Preconditions are checked inside the
//! store's transaction too: two racing `If-Match` writers cannot both win.

use std::sync::Arc;

use claimdb_audit::{AuditEvent, AuditLog, Decision as AuditDecision};
use claimdb_identity::Verifier;
use claimdb_model::Timestamp;
use claimdb_rules::{Method, Request, Ruleset, Target};
use claimdb_store::Store;

use crate::auth::{Authenticator, Principal};
use crate::authz::{self, ActiveRules, Loaded, RulesCell};
use crate::clock::Clock;
use crate::context::RequestContext;
use crate::error::EngineError;
use crate::sign_in::SignInHooks;

/// Times a write is decided again after a document it was decided on changed concurrently.
pub(crate) const MAX_DECIDE_ATTEMPTS: usize = 8;

/// How the engine authenticates and authorizes.
pub struct EngineOptions {
    /// The rules every request is decided by.
    pub rules: Ruleset,
    /// Where they came from (a file name, `default`), for explanations and the audit log.
    pub rules_origin: String,
    /// Whether rules are managed in a file or in the database (see [`RulesSource`]).
    pub rules_source: RulesSource,
    /// Verifies bearer tokens; `None` refuses every bearer token (`unknown-issuer`).
    pub verifier: Option<Arc<Verifier>>,
    /// Whether a `permission-denied` error carries the denial's explanation.
    pub explain_denials: bool,
    /// Callers holding any of these roles may use the admin API.
    pub admin_roles: Vec<String>,
    /// SHA-256 of the configured admin key; it wins over a stored one.
    pub admin_key_sha256: Option<[u8; 32]>,
    /// Without a configured key: accept the generated key whose hash is stored in the store's
    /// records (read on every admin request, so a reset applies at once on every node).
    pub admin_key_stored: bool,
    /// Where every decision is recorded; `None`: no audit log.
    pub audit: Option<AuditLog>,
    /// claimdb's sign-in (sessions, refresh tokens); `None`: session cookies are no credential.
    pub sign_in: Option<Arc<dyn SignInHooks>>,
    /// The work bound of one page of a query: documents it may examine before it ends early
    /// with a continuation token.
    pub query_max_examined: usize,
    /// The time every decision, audit event and token check reads.
    pub clock: Clock,
    /// Emulator mode (never on by default): also accepts `Bearer owner`, which bypasses the
    /// rules, and unverified tokens of issuers no provider has (`emulator.rs`).
    pub emulator: bool,
}

impl EngineOptions {
    /// Deciding by `rules`, with no providers, explanations on and no admin access.
    pub fn new(rules: Ruleset, rules_origin: impl Into<String>) -> Self {
        EngineOptions {
            rules,
            rules_origin: rules_origin.into(),
            rules_source: RulesSource::Database,
            verifier: None,
            explain_denials: true,
            admin_roles: Vec::new(),
            admin_key_sha256: None,
            admin_key_stored: false,
            audit: None,
            sign_in: None,
            query_max_examined: claimdb_store::query::limits::DEFAULT_MAX_EXAMINED,
            clock: Clock::system(),
            emulator: false,
        }
    }
}

/// Where the active rules are managed, and so how they may be changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesSource {
    /// A rules file, reloaded when it changes; the admin API and `claimdb rules set` are
    /// refused (edit the file).
    File(std::path::PathBuf),
    /// Versions stored in the database, set through the admin API or `claimdb rules set`;
    /// the newest is in force on every node.
    Database,
}

/// Executes requests against a store.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) rules: RulesCell,
    pub(crate) rules_source: RulesSource,
    pub(crate) auth: Authenticator,
    pub(crate) explain_denials: bool,
    pub(crate) audit: Option<AuditLog>,
    /// The audit events of allowed writes go into the store's journal (`claimdb_audit::journal`).
    pub(crate) journal_audit: bool,
    pub(crate) sign_in: Option<Arc<dyn SignInHooks>>,
    pub(crate) query_max_examined: usize,
    pub(crate) clock: Clock,
    /// Emulator mode's rules for the owner (allow everything); `None` outside emulator mode.
    pub(crate) owner_rules: Option<Arc<ActiveRules>>,
    /// The listeners' results clients may resume from (`listen.rs`).
    pub(crate) resume_book: crate::listen::ResumeBook,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, options: EngineOptions) -> Self {
        let journal_audit = options.audit.is_some() && store.capabilities().journal;
        Engine {
            store,
            rules: RulesCell::new(ActiveRules {
                ruleset: options.rules,
                origin: options.rules_origin,
                version: None,
            }),
            rules_source: options.rules_source,
            auth: Authenticator::new(
                options.verifier,
                options.admin_roles,
                options.admin_key_sha256,
                options.admin_key_stored,
                options.emulator,
            ),
            explain_denials: options.explain_denials,
            journal_audit,
            audit: options.audit,
            sign_in: options.sign_in,
            query_max_examined: options.query_max_examined.max(1),
            clock: options.clock,
            owner_rules: if options.emulator {
                crate::emulator::owner_rules()
            } else {
                None
            },
            resume_book: Default::default(),
        }
    }

    /// The audit log, if on.
    pub fn audit_log(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// Whether the audit events of allowed writes go into the store's journal: then the
    /// journal needs [`claimdb_audit::journal::recover`] at startup and a trimmer.
    pub fn journals_audit(&self) -> bool {
        self.journal_audit
    }

    /// The engine's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The store requests run against.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The token verifier, if any provider is configured.
    pub fn verifier(&self) -> Option<&Arc<Verifier>> {
        self.auth.verifier()
    }

    /// What turns the request's credential into a caller (`auth.rs`).
    pub(crate) fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// claimdb's sessions and refresh tokens, if its issuer is enabled.
    pub(crate) fn sign_in(&self) -> Option<&Arc<dyn SignInHooks>> {
        self.sign_in.as_ref()
    }

    /// The active rules.
    pub fn rules(&self) -> Arc<ActiveRules> {
        self.rules.load()
    }

    /// The rules `who` is decided by: the active rules, or emulator mode's owner's.
    pub(crate) fn rules_for(&self, who: Option<&Principal>) -> Arc<ActiveRules> {
        match (&self.owner_rules, who) {
            (Some(owner), Some(p)) if p.is_owner() => owner.clone(),
            _ => self.rules.load(),
        }
    }

    /// Whether the engine runs in emulator mode.
    pub fn is_emulator(&self) -> bool {
        self.auth.emulator()
    }

    /// Swaps in new rules atomically: requests already deciding finish on the old ones.
    pub fn replace_rules(&self, ruleset: Ruleset, origin: impl Into<String>) {
        self.rules.store(ActiveRules {
            ruleset,
            origin: origin.into(),
            version: None,
        });
    }

    /// Swaps in a stored version of the rules (see `rules_admin.rs`).
    pub(crate) fn install_rules_version(&self, ruleset: Ruleset, version: u64) {
        self.rules.store(ActiveRules {
            ruleset,
            origin: format!("rules v{version}"),
            version: Some(version),
        });
    }

    /// Where the rules are managed.
    pub fn rules_source(&self) -> &RulesSource {
        &self.rules_source
    }

    /// Decides one request and reports a denial as `permission-denied`. Every decision goes to
    /// the audit log; for an allowed write (`durable`), the event is handed back so the caller
    /// records it durably alongside the commit (one fsync wait, not two).
    pub(crate) async fn check(
        &self,
        ctx: &RequestContext,
        who: Option<&Principal>,
        rules: &ActiveRules,
        request: &Request,
        loaded: &mut Loaded,
        durable: bool,
    ) -> Result<Option<AuditEvent>, EngineError> {
        let decision = authz::decide(&rules.ruleset, request, loaded, &*self.store).await?;
        let event = self.decided(ctx, who, request, &decision, &rules.origin);
        if decision.allowed {
            match event {
                Some(e) if !durable => {
                    self.record(e).await;
                    Ok(None)
                }
                e => Ok(e),
            }
        } else {
            if let Some(e) = event {
                self.record(e).await;
            }
            Err(authz::denied(
                rules,
                request,
                &decision,
                loaded,
                self.explain_denials,
            ))
        }
    }

    /// Counts a decision and, when the audit log is on, returns its event.
    pub(crate) fn decided(
        &self,
        ctx: &RequestContext,
        who: Option<&Principal>,
        request: &Request,
        decision: &claimdb_rules::Decision,
        origin: &str,
    ) -> Option<AuditEvent> {
        let label = if decision.allowed { "allow" } else { "deny" };
        metrics::counter!("claimdb_rules_decisions_total", "decision" => label).increment(1);
        let reason = (!decision.allowed).then(|| authz::deny_reason(request.method, decision));
        if let Some(reason) = &reason {
            tracing::debug!(
                request_id = %ctx.request_id,
                method = request.method.name(),
                rule = authz::rule_location(origin, decision).as_deref(),
                reason,
                "denied"
            );
        }
        self.audit.as_ref()?;
        Some(AuditEvent {
            time: self.clock.now(),
            request_id: ctx.request_id.clone(),
            uid: who.map(|p| p.uid.clone()),
            provider: who.map(|p| p.provider.clone()),
            method: request.method.name().into(),
            path: authz::target_name(&request.target),
            decision: if decision.allowed {
                AuditDecision::Allow
            } else {
                AuditDecision::Deny
            },
            rule: authz::rule_location(origin, decision),
            reason,
        })
    }

    /// Appends an event to the audit log (waiting only if its queue is full).
    pub(crate) async fn record(&self, event: AuditEvent) {
        if let Some(log) = &self.audit
            && let Err(e) = log.record(event).await
        {
            tracing::error!("the audit log refused an event: {e}");
        }
    }

    /// Runs `commit` (given the journal lines to commit with it) while the events of its
    /// decisions are made durable: in the store's journal, committed with the writes, when the
    /// store keeps one (`claimdb_audit::journal`); otherwise by the audit log's own sync, alongside the
    /// commit. A failure of the log is reported (error log, metrics, health) but cannot undo
    /// the commit.
    pub(crate) async fn audited<T, F>(
        &self,
        events: Vec<AuditEvent>,
        commit: impl FnOnce(Vec<String>) -> F,
    ) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let Some(log) = &self.audit else {
            return commit(Vec::new()).await;
        };
        if self.journal_audit {
            let mut journal = Vec::with_capacity(events.len());
            for event in events {
                let mut line = Vec::with_capacity(256);
                claimdb_audit::encode_line(&event, &mut line);
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                // The encoder writes JSON text, so this never replaces anything.
                journal.push(String::from_utf8_lossy(&line).into_owned());
                self.record(event).await;
            }
            return commit(journal).await;
        }
        let commit = commit(Vec::new());
        let durable = async {
            let mut events = events;
            let Some(last) = events.pop() else {
                return Ok(());
            };
            for e in events {
                log.record(e).await?;
            }
            // The writer appends in order, so the last event's sync covers the others.
            log.record_durable(last).await
        };
        let (result, logged) = tokio::join!(commit, durable);
        if let Err(e) = logged {
            tracing::error!("the audit log could not make a write's decision durable: {e}");
        }
        result
    }

    /// Whether the engine can serve requests (the store answers).
    /// Whether the engine can serve requests: the store answers and every identity provider
    /// has usable keys (fetched, or loaded from the persisted copy).
    pub async fn ready(&self, _ctx: &RequestContext) -> Result<(), EngineError> {
        self.store.ping().await?;
        if let Some(verifier) = self.auth.verifier() {
            let now = self.clock.now();
            if !verifier.ready(now) {
                let waiting: Vec<String> = verifier
                    .metrics(now)
                    .into_iter()
                    .filter(|m| m.keys == 0)
                    .map(|m| m.provider)
                    .collect();
                return Err(EngineError::Unavailable {
                    message: format!(
                        "waiting for the signing keys of provider(s) {}",
                        waiting.join(", ")
                    ),
                    write_index: None,
                });
            }
        }
        Ok(())
    }
}

/// A rules request for `method` on `target` by `auth` at `now`.
pub(crate) fn rules_request(
    method: Method,
    target: Target,
    auth: Option<&Principal>,
    now: Timestamp,
) -> Request {
    let mut request = Request::new(method, target, now);
    request.auth = auth.map(Principal::rules_value);
    request
}

#[cfg(test)]
mod tests;
