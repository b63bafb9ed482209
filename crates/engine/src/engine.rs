//! [`Engine`]: one method per operation. Each takes the request's context and domain inputs,
//! authenticates the caller (identity), decides the operation with the active rules, then
//! executes it against the store and shapes the result.
//!
//! Writes are decided against the document states they will apply to: every document the rules
//! looked at is pinned by a read check in the same atomic `commit`, and a concurrent
//! change makes the engine decide again on the new state. Preconditions are checked inside the
//! store's transaction too: two racing `If-Match` writers cannot both win.

use std::collections::HashMap;
use std::sync::Arc;

use claimdb_audit::{AuditEvent, AuditLog, Decision as AuditDecision};
use claimdb_identity::Verifier;
use claimdb_model::json::{DecodedUpdate, DecodedWrite};
use claimdb_model::{CollectionPath, DocPath, Map, Timestamp};
use claimdb_rules::{Method, Request, Ruleset, Target};
use claimdb_store::{
    Commit, CommitResult, Document, PageRequest, Precondition, Query, Store, StoreError, Write,
    WriteOp, WriteResult, apply_write,
};

use crate::auth::{Authenticator, Principal};
use crate::authz::{self, ActiveRules, Loaded, RulesCell};
use crate::batch;
use crate::clock::Clock;
use crate::context::RequestContext;
use crate::error::EngineError;
use crate::ids::generate_id;
use crate::list::{self, ListPage, ListRequest};
use crate::query::{self, QueryPaging, QueryResults};
use crate::sign_in::SignInHooks;

/// Times a write is decided again after a document it was decided on changed concurrently.
const MAX_DECIDE_ATTEMPTS: usize = 8;

/// The condition a single-document write puts on the document's current state.
///
/// Like [`Precondition`], plus a set of acceptable versions (an `If-Match` list of entity tags).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WriteCondition {
    #[default]
    None,
    /// The document must exist (`If-Match: *`).
    Exists,
    /// The document must not exist (`If-None-Match: *`).
    Missing,
    /// The document must exist at one of these versions (`If-Match: "3", "4"`).
    VersionIn(Vec<u64>),
}

impl From<Precondition> for WriteCondition {
    fn from(p: Precondition) -> Self {
        match p {
            Precondition::None => WriteCondition::None,
            Precondition::Exists => WriteCondition::Exists,
            Precondition::Missing => WriteCondition::Missing,
            Precondition::Version(v) => WriteCondition::VersionIn(vec![v]),
        }
    }
}

/// The outcome of a set (replace-or-create).
#[derive(Debug, Clone, PartialEq)]
pub struct SetOutcome {
    pub document: Document,
    /// True when the document did not exist before.
    pub created: bool,
}

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
    store: Arc<dyn Store>,
    rules: RulesCell,
    rules_source: RulesSource,
    auth: Authenticator,
    explain_denials: bool,
    audit: Option<AuditLog>,
    /// The audit events of allowed writes go into the store's journal (`claimdb_audit::journal`).
    journal_audit: bool,
    sign_in: Option<Arc<dyn SignInHooks>>,
    query_max_examined: usize,
    clock: Clock,
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
            ),
            explain_denials: options.explain_denials,
            journal_audit,
            audit: options.audit,
            sign_in: options.sign_in,
            query_max_examined: options.query_max_examined.max(1),
            clock: options.clock,
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
    async fn check(
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
    fn decided(
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
    async fn audited<T, F>(
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

    /// Reads one document; `NotFound` when it does not exist (and the rules allow the read).
    pub async fn get(&self, ctx: &RequestContext, path: &DocPath) -> Result<Document, EngineError> {
        let auth = self.authenticate(ctx).await?;
        let rules = self.rules.load();
        let mut doc = self.store.get(path).await?;
        let mut request = rules_request(
            Method::Get,
            Target::Doc(path.clone()),
            auth.as_ref(),
            self.clock.timestamp(),
        );
        // The rules borrow the data (`resource.data`) and give it back: no copy per read.
        request.existing = doc.as_mut().map(|d| std::mem::take(&mut d.data));
        let mut loaded = Loaded::default();
        self.check(ctx, auth.as_ref(), &rules, &request, &mut loaded, false)
            .await?;
        let mut doc =
            doc.ok_or_else(|| EngineError::not_found(format!("document {path} does not exist")))?;
        doc.data = request.existing.take().unwrap_or_default();
        Ok(doc)
    }

    /// Creates a document at `path`; `AlreadyExists` if there is one.
    pub async fn create(
        &self,
        ctx: &RequestContext,
        path: DocPath,
        data: DecodedWrite,
    ) -> Result<Document, EngineError> {
        let op = WriteOp::Create {
            data: data.data,
            transforms: data.transforms,
        };
        let result = self.write_one(ctx, Write::new(path, op)).await?;
        written(result)
    }

    /// Creates a document with a fresh 20-character id in `collection`.
    pub async fn create_with_generated_id(
        &self,
        ctx: &RequestContext,
        collection: &CollectionPath,
        data: DecodedWrite,
    ) -> Result<Document, EngineError> {
        // A collision among 62^20 ids means a broken random source; retry once, then report it.
        let mut last = None;
        for _ in 0..2 {
            let path = collection.doc(&generate_id())?;
            match self.create(ctx, path, data.clone()).await {
                Err(e @ EngineError::AlreadyExists { .. }) => last = Some(e),
                other => return other,
            }
        }
        let detail = last.map(|e| e.to_string()).unwrap_or_default();
        Err(EngineError::internal(format!(
            "generated document ids collided twice: {detail}"
        )))
    }

    /// Replaces the document at `path`, or creates it.
    pub async fn set(
        &self,
        ctx: &RequestContext,
        path: DocPath,
        data: DecodedWrite,
        condition: impl Into<WriteCondition>,
    ) -> Result<SetOutcome, EngineError> {
        let precondition = self.resolve(&path, condition.into()).await?;
        let op = WriteOp::Set {
            data: data.data,
            transforms: data.transforms,
        };
        let result = self
            .write_one(ctx, Write::new(path, op).with_precondition(precondition))
            .await?;
        let created = !result.existed;
        Ok(SetOutcome {
            document: written(result)?,
            created,
        })
    }

    /// Merges dotted field paths into an existing document; `NotFound` when it does not exist.
    pub async fn update(
        &self,
        ctx: &RequestContext,
        path: DocPath,
        update: DecodedUpdate,
        condition: impl Into<WriteCondition>,
    ) -> Result<Document, EngineError> {
        let precondition = self.resolve(&path, condition.into()).await?;
        let op = WriteOp::Update {
            fields: update.fields,
            transforms: update.transforms,
        };
        let result = self
            .write_one(ctx, Write::new(path, op).with_precondition(precondition))
            .await?;
        written(result)
    }

    /// Deletes a document. Deleting a missing document succeeds unless a condition says not.
    pub async fn delete(
        &self,
        ctx: &RequestContext,
        path: DocPath,
        condition: impl Into<WriteCondition>,
    ) -> Result<(), EngineError> {
        let precondition = self.resolve(&path, condition.into()).await?;
        self.write_one(
            ctx,
            Write::new(path, WriteOp::Delete).with_precondition(precondition),
        )
        .await?;
        Ok(())
    }

    /// One page of a collection in document-id order.
    pub async fn list(
        &self,
        ctx: &RequestContext,
        collection: &CollectionPath,
        request: &ListRequest,
    ) -> Result<ListPage, EngineError> {
        let page_size = list::page_size(request.page_size)?;
        let auth = self.authenticate(ctx).await?;
        let rules = self.rules.load();
        let mut rules_request = rules_request(
            Method::List,
            Target::Collection(collection.clone()),
            auth.as_ref(),
            self.clock.timestamp(),
        );
        rules_request.query = Some(claimdb_rules::Query {
            limit: i64::try_from(page_size).ok(),
            ..claimdb_rules::Query::default()
        });
        self.check(
            ctx,
            auth.as_ref(),
            &rules,
            &rules_request,
            &mut Loaded::default(),
            false,
        )
        .await?;
        let after = request
            .page_token
            .as_deref()
            .map(list::decode_token)
            .transpose()?;
        // One extra document tells whether another page follows.
        let mut documents = self
            .store
            .list(collection, page_size + 1, after.as_deref())
            .await?;
        let next_page_token = if documents.len() > page_size {
            documents.truncate(page_size);
            documents.last().map(|d| list::encode_token(d.path.id()))
        } else {
            None
        };
        Ok(ListPage {
            documents,
            next_page_token,
        })
    }

    /// Runs one page of a query: at most the page size of documents, after examining at most
    /// the work bound, with a token to continue when more may follow.
    pub async fn query(
        &self,
        ctx: &RequestContext,
        query: &Query,
        paging: &QueryPaging,
    ) -> Result<QueryResults, EngineError> {
        query::validate(query)?;
        let size = query::page_size(query, paging.page_size)?;
        let resume = paging
            .page_token
            .as_deref()
            .map(|token| crate::page_token::decode(query, token))
            .transpose()?;
        let auth = self.authenticate(ctx).await?;
        let rules = self.rules.load();
        let request = query::rules_request(
            query,
            auth.as_ref().map(Principal::rules_value),
            self.clock.timestamp(),
        )?;
        self.check(
            ctx,
            auth.as_ref(),
            &rules,
            &request,
            &mut Loaded::default(),
            false,
        )
        .await?;
        let page = PageRequest {
            size,
            max_examined: self.query_max_examined,
            resume,
        };
        let result = self.store.query(query, &page).await?;
        Ok(QueryResults {
            documents: result.documents,
            next_page_token: result
                .next
                .map(|position| crate::page_token::encode(query, &position)),
        })
    }

    /// Applies up to 500 writes atomically. On failure nothing is applied, and the error carries
    /// the index of the failing write when it can be determined.
    pub async fn batch(
        &self,
        ctx: &RequestContext,
        writes: Vec<Write>,
    ) -> Result<CommitResult, EngineError> {
        batch::check_size(&writes)?;
        let who = self.authenticate(ctx).await?;
        let auth = who.as_ref().map(Principal::rules_value);
        let rules = self.rules.load();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (checks, events) = self
                .decide_batch(ctx, who.as_ref(), &rules, &writes, auth.as_ref())
                .await?;
            let commit = |journal| self.commit_batch(checks, writes.clone(), journal);
            match self.audited(events, commit).await {
                Err(EngineError::Aborted { .. }) if attempts < MAX_DECIDE_ATTEMPTS => continue,
                other => return other,
            }
        }
    }

    /// Decides every write of a batch against the state it applies to — each write sees the
    /// ones before it, and `getAfter()` sees the whole batch applied. Returns the read checks
    /// that pin the decision for the commit.
    async fn decide_batch(
        &self,
        ctx: &RequestContext,
        who: Option<&Principal>,
        rules: &ActiveRules,
        writes: &[Write],
        auth: Option<&claimdb_model::Value>,
    ) -> Result<(Vec<claimdb_store::ReadCheck>, Vec<AuditEvent>), EngineError> {
        let mut paths: Vec<DocPath> = Vec::new();
        for w in writes {
            if !paths.contains(&w.path) {
                paths.push(w.path.clone());
            }
        }
        let stored = self.store.get_many(&paths).await?;
        let mut loaded = Loaded::default();
        let mut state: HashMap<DocPath, Option<Document>> = HashMap::new();
        for (path, doc) in paths.iter().zip(stored) {
            loaded.insert(path.clone(), doc.as_ref());
            state.insert(path.clone(), doc);
        }
        let now = self.clock.timestamp();
        let mut requests = Vec::with_capacity(writes.len());
        for w in writes {
            let current = state.get(&w.path).cloned().flatten();
            let (method, existing, after) = simulate(current.as_ref(), w, now);
            let mut request = Request::new(method, Target::Doc(w.path.clone()), now);
            request.auth = auth.cloned();
            request.existing = existing;
            request.incoming = after.as_ref().map(|d| d.data.clone());
            requests.push(request);
            if let Ok(next) = apply_write(current.as_ref(), &unconditional(w), now, 0) {
                state.insert(w.path.clone(), next);
            }
        }
        for (path, doc) in &state {
            loaded
                .prefetch
                .insert_after(path.clone(), doc.as_ref().map(|d| d.data.clone()));
        }
        let decisions =
            authz::decide_batch(&rules.ruleset, &requests, &mut loaded, &*self.store).await?;
        let mut events = Vec::new();
        for (request, decision) in requests.iter().zip(&decisions) {
            if let Some(e) = self.decided(ctx, who, request, decision, &rules.origin) {
                events.push(e);
            }
        }
        if let Some(i) = decisions.iter().position(|d| !d.allowed) {
            // Nothing is written: every decision of the batch is logged, none needs to wait.
            for e in events {
                self.record(e).await;
            }
            return Err(authz::denied(
                rules,
                &requests[i],
                &decisions[i],
                &loaded,
                self.explain_denials,
            )
            .at_write(i));
        }
        Ok((loaded.checks, events))
    }

    async fn commit_batch(
        &self,
        checks: Vec<claimdb_store::ReadCheck>,
        writes: Vec<Write>,
        journal: Vec<String>,
    ) -> Result<CommitResult, EngineError> {
        let preconditions: Vec<Precondition> = writes.iter().map(|w| w.precondition).collect();
        let commit = Commit::from_parts(checks, writes, journal);
        match self.store.commit(commit).await {
            Ok(result) => Ok(result),
            Err(e) => {
                // A store names the failing write of a multi-write commit; a single write is 0.
                let index = match e.write_index() {
                    Some(i) => Some(i),
                    None if preconditions.len() == 1 => Some(0),
                    None => None,
                };
                let e = EngineError::from(e);
                Err(
                    match index.and_then(|i| Some((i, *preconditions.get(i)?))) {
                        Some((i, precondition)) => conditional(e, precondition).at_write(i),
                        None => e,
                    },
                )
            }
        }
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

    /// Decides one write against the document's current state, then commits it pinned to
    /// that state (deciding again if it changed meanwhile).
    async fn write_one(
        &self,
        ctx: &RequestContext,
        write: Write,
    ) -> Result<WriteResult, EngineError> {
        let auth = self.authenticate(ctx).await?;
        let rules = self.rules.load();
        let precondition = write.precondition;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let current = self.store.get(&write.path).await?;
            let mut loaded = Loaded::default();
            loaded.insert(write.path.clone(), current.as_ref());
            let now = self.clock.timestamp();
            let (method, existing, after) = simulate(current.as_ref(), &write, now);
            loaded
                .prefetch
                .insert_after(write.path.clone(), after.as_ref().map(|d| d.data.clone()));
            let mut request =
                rules_request(method, Target::Doc(write.path.clone()), auth.as_ref(), now);
            request.existing = existing;
            request.incoming = after.map(|d| d.data);
            let event = self
                .check(ctx, auth.as_ref(), &rules, &request, &mut loaded, true)
                .await?;
            let checks = loaded.checks;
            let commit = |journal| {
                self.store
                    .commit(Commit::from_parts(checks, vec![write.clone()], journal))
            };
            match self.audited(event.into_iter().collect(), commit).await {
                Ok(mut result) => {
                    return result.results.pop().ok_or_else(|| {
                        EngineError::internal("the store returned no result for a write")
                    });
                }
                Err(StoreError::Aborted(_)) if attempts < MAX_DECIDE_ATTEMPTS => continue,
                Err(e) => return Err(conditional(EngineError::from(e), precondition)),
            }
        }
    }

    /// Turns a set of acceptable versions into one store precondition. With several versions the
    /// current one is read first; the store re-checks it inside the commit, so a concurrent
    /// writer still makes the write fail rather than be lost.
    async fn resolve(
        &self,
        path: &DocPath,
        condition: WriteCondition,
    ) -> Result<Precondition, EngineError> {
        Ok(match condition {
            WriteCondition::None => Precondition::None,
            WriteCondition::Exists => Precondition::Exists,
            WriteCondition::Missing => Precondition::Missing,
            WriteCondition::VersionIn(versions) => match versions.as_slice() {
                [] => {
                    return Err(EngineError::failed_precondition(format!(
                        "no entity tag of the condition names a version, so document {path} cannot match it"
                    )));
                }
                [v] => Precondition::Version(*v),
                _ => match self.store.get(path).await? {
                    Some(doc) if versions.contains(&doc.version) => {
                        Precondition::Version(doc.version)
                    }
                    Some(doc) => {
                        return Err(EngineError::failed_precondition(format!(
                            "document {path} is at version {}, not one of {versions:?}",
                            doc.version
                        )));
                    }
                    None => {
                        return Err(EngineError::failed_precondition(format!(
                            "document {path} does not exist, so it matches no version"
                        )));
                    }
                },
            },
        })
    }
}

/// A failed write whose caller set a condition reports `failed-precondition` (HTTP 412), as
/// conditional requests do, whatever the store called it: `If-Match` on a missing document,
/// `If-None-Match: *` on an existing one.
fn conditional(error: EngineError, precondition: Precondition) -> EngineError {
    match (error, precondition) {
        (
            EngineError::NotFound {
                message,
                write_index,
            },
            Precondition::Exists | Precondition::Version(_),
        )
        | (
            EngineError::AlreadyExists {
                message,
                write_index,
            },
            Precondition::Missing,
        ) => EngineError::FailedPrecondition {
            message,
            write_index,
        },
        (error, _) => error,
    }
}

/// A rules request for `method` on `target` by `auth` at `now`.
fn rules_request(
    method: Method,
    target: Target,
    auth: Option<&Principal>,
    now: Timestamp,
) -> Request {
    let mut request = Request::new(method, target, now);
    request.auth = auth.map(Principal::rules_value);
    request
}

/// The same write without its precondition (for computing what it would produce: the store
/// checks the precondition itself at commit).
fn unconditional(write: &Write) -> std::borrow::Cow<'_, Write> {
    if write.precondition == Precondition::None {
        return std::borrow::Cow::Borrowed(write);
    }
    let mut w = write.clone();
    w.precondition = Precondition::None;
    std::borrow::Cow::Owned(w)
}

/// What a write is to the rules: its method, `resource` (the stored data, absent for a create)
/// and the document after it (`request.resource`; `None` for a delete, or when the write cannot
/// apply — then the store reports why, if the rules allow it at all).
fn simulate(
    current: Option<&Document>,
    write: &Write,
    now: Timestamp,
) -> (Method, Option<Map>, Option<Document>) {
    let w = unconditional(write);
    match (&write.op, current) {
        (WriteOp::Create { .. }, _) | (WriteOp::Set { .. }, None) => (
            Method::Create,
            None,
            apply_write(None, &w, now, 0).ok().flatten(),
        ),
        (WriteOp::Set { .. } | WriteOp::Update { .. }, _) => (
            Method::Update,
            authz::data(current),
            apply_write(current, &w, now, 0).ok().flatten(),
        ),
        (WriteOp::Delete, _) => (Method::Delete, authz::data(current), None),
    }
}

fn written(result: WriteResult) -> Result<Document, EngineError> {
    result
        .document
        .ok_or_else(|| EngineError::internal("the store returned no document after a write"))
}

#[cfg(test)]
mod tests;
