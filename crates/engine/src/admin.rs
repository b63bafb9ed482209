//! The admin operations (users, custom claims, revocation, rules, explain) and `/v1/me`. Each
//! admin operation first checks the admin condition ([`Engine::authorize_admin`]).

use std::time::{Duration, SystemTime};

use claimdb_rules::{Method, Ruleset, TestCase};
use serde_json::{Map, Value as Json, json};

use crate::auth::Principal;
use crate::authz::{self, Loaded};
use crate::context::RequestContext;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::users::{self, UserRecord};

/// Largest page of users.
pub const MAX_USERS_PAGE: usize = 1000;

impl Engine {
    /// The caller as rules see them; `unauthenticated` without a credential.
    pub async fn me(&self, ctx: &RequestContext) -> Result<Principal, EngineError> {
        self.authenticate(ctx)
            .await?
            .ok_or_else(|| EngineError::Unauthenticated {
                message: "no credential was sent; send Authorization: Bearer <token> (or sign in for a session cookie)".into(),
                reason: "missing-credential",
            })
    }

    /// One page of known users in uid order, after `after`.
    pub async fn admin_list_users(
        &self,
        ctx: &RequestContext,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<UserRecord>, EngineError> {
        self.authorize_admin(ctx).await?;
        if !(1..=MAX_USERS_PAGE).contains(&limit) {
            return Err(EngineError::invalid_argument(format!(
                "page_size must be between 1 and {MAX_USERS_PAGE}"
            )));
        }
        users::list(&**self.store(), after, limit).await
    }

    /// One page of known users whose uid starts with `prefix`, in uid order, after `after`
    /// (the previous page's last uid). Records are kept in byte order of their keys, so the
    /// matches are the prefix itself and a run of keys right after it.
    pub async fn admin_search_users(
        &self,
        ctx: &RequestContext,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<UserRecord>, EngineError> {
        self.authorize_admin(ctx).await?;
        if !(1..=MAX_USERS_PAGE).contains(&limit) {
            return Err(EngineError::invalid_argument(format!(
                "page_size must be between 1 and {MAX_USERS_PAGE}"
            )));
        }
        users::validate_uid(prefix)?;
        let mut found = Vec::new();
        let after = match after {
            Some(after) if after >= prefix => after,
            // The first page: the uid equal to the prefix (listing starts strictly after it).
            _ => {
                found.extend(users::load(&**self.store(), prefix).await?);
                prefix
            }
        };
        let rest = limit - found.len();
        if rest > 0 {
            let page = users::list(&**self.store(), Some(after), rest).await?;
            found.extend(page.into_iter().take_while(|u| u.uid.starts_with(prefix)));
        }
        Ok(found)
    }

    /// One user's record; `not-found` when claimdb has no record of the user.
    pub async fn admin_get_user(
        &self,
        ctx: &RequestContext,
        uid: &str,
    ) -> Result<UserRecord, EngineError> {
        self.authorize_admin(ctx).await?;
        users::validate_uid(uid)?;
        users::load(&**self.store(), uid)
            .await?
            .ok_or_else(|| EngineError::not_found(format!("no record of user {uid}")))
    }

    /// Replaces a user's custom claims; they apply from the user's next request.
    pub async fn admin_set_claims(
        &self,
        ctx: &RequestContext,
        uid: &str,
        claims: &Json,
    ) -> Result<Map<String, Json>, EngineError> {
        self.authorize_admin(ctx).await?;
        let claims = users::validate_custom_claims(claims)?;
        let record = users::modify_at(&**self.store(), uid, self.clock().unix_secs(), |r| {
            r.custom_claims = claims.clone();
            true
        })
        .await?;
        tracing::info!(request_id = %ctx.request_id, uid, "custom claims set");
        Ok(record.custom_claims)
    }

    /// A user's custom claims (an empty object when none are set).
    pub async fn admin_get_claims(
        &self,
        ctx: &RequestContext,
        uid: &str,
    ) -> Result<Map<String, Json>, EngineError> {
        self.authorize_admin(ctx).await?;
        users::validate_uid(uid)?;
        Ok(users::load(&**self.store(), uid)
            .await?
            .map(|r| r.custom_claims)
            .unwrap_or_default())
    }

    /// Removes a user's custom claims.
    pub async fn admin_delete_claims(
        &self,
        ctx: &RequestContext,
        uid: &str,
    ) -> Result<(), EngineError> {
        self.authorize_admin(ctx).await?;
        users::validate_uid(uid)?;
        if users::load(&**self.store(), uid).await?.is_some() {
            users::modify_at(&**self.store(), uid, self.clock().unix_secs(), |r| {
                let changed = !r.custom_claims.is_empty();
                r.custom_claims.clear();
                changed
            })
            .await?;
        }
        tracing::info!(request_id = %ctx.request_id, uid, "custom claims removed");
        Ok(())
    }

    /// Revokes every credential of the user issued before this call returns: bearer tokens,
    /// claimdb tokens, sessions, refresh tokens (takes up to a second: see below).
    /// Returns the new `tokens_valid_after` in Unix seconds.
    pub async fn admin_revoke(&self, ctx: &RequestContext, uid: &str) -> Result<i64, EngineError> {
        self.authorize_admin(ctx).await?;
        // `iat` has one-second resolution: every credential issued in this second may predate
        // the call, so the boundary is the next second, and the call returns only once that
        // second has begun — then every credential issued before it returned is refused, and
        // every one claimdb issues after it (stamped with the current second) is not.
        let valid_after = self.clock().unix_secs().saturating_add(1);
        users::modify_at(&**self.store(), uid, self.clock().unix_secs(), |r| {
            r.tokens_valid_after = Some(
                r.tokens_valid_after
                    .map_or(valid_after, |t| t.max(valid_after)),
            );
            true
        })
        .await?;
        if let Some(sign_in) = self.sign_in() {
            sign_in
                .revoke_refresh_tokens(uid, self.clock().now())
                .await?;
        }
        let boundary = SystemTime::UNIX_EPOCH + Duration::from_secs(valid_after.unsigned_abs());
        if let Ok(wait) = boundary.duration_since(self.clock().now()) {
            tokio::time::sleep(wait).await;
        }
        tracing::info!(request_id = %ctx.request_id, uid, valid_after, "tokens revoked");
        Ok(valid_after)
    }

    /// Decisions from the audit log matching `filter` (newest first when it says so).
    pub async fn admin_audit(
        &self,
        ctx: &RequestContext,
        filter: claimdb_audit::AuditFilter,
    ) -> Result<Vec<claimdb_audit::AuditEvent>, EngineError> {
        self.authorize_admin(ctx).await?;
        let Some(log) = self.audit_log() else {
            return Err(EngineError::failed_precondition(
                "the audit log is off on this server (audit = false)",
            ));
        };
        // Make events recorded so far readable, then read the files off the async threads.
        log.flush()
            .await
            .map_err(|e| EngineError::internal(format!("flushing the audit log: {e}")))?;
        let dir = log.dir().to_path_buf();
        tokio::task::spawn_blocking(move || claimdb_audit::query(&dir, &filter))
            .await
            .map_err(|e| EngineError::internal(format!("audit query task: {e}")))?
            .map_err(|e| EngineError::internal(format!("reading the audit log: {e}")))
    }

    /// Decides a hypothetical request (the rules-test case format: `auth`, `method`, `path`,
    /// `data`, `existing`, `query`, `time`) with the active rules — or with `rules` given as
    /// source — and explains the decision. Documents not in `existing` are read from the store.
    pub async fn explain(&self, ctx: &RequestContext, case: &Json) -> Result<Json, EngineError> {
        self.authorize_admin(ctx).await?;
        let mut case = case.clone();
        let Some(obj) = case.as_object_mut() else {
            return Err(EngineError::invalid_argument(
                "the body must be a JSON object describing a request",
            ));
        };
        let custom_rules = match obj.remove("rules") {
            None | Some(Json::Null) => None,
            Some(Json::String(src)) => Some(compile_rules(&src)?),
            Some(_) => {
                return Err(EngineError::invalid_argument(
                    "rules must be the source text of a rules file",
                ));
            }
        };
        obj.entry("expect").or_insert_with(|| json!("allow"));
        let case = TestCase::from_json(&case).map_err(EngineError::invalid_argument)?;
        let request = case.request().map_err(EngineError::invalid_argument)?;
        let active = self.rules();
        let (ruleset, origin) = match &custom_rules {
            Some(r) => (r, "request"),
            None => (&active.ruleset, active.origin.as_str()),
        };
        let mut loaded = Loaded::default();
        for (path, doc) in &case.existing {
            loaded.prefetch.insert(path.clone(), Some(doc.clone()));
        }
        if let claimdb_rules::Target::Doc(p) = &request.target {
            let after = match request.method {
                Method::Create | Method::Update => request.incoming.clone(),
                Method::Delete => None,
                Method::Get | Method::List => request.existing.clone(),
            };
            if request.method != Method::Get && request.method != Method::List {
                loaded.prefetch.insert_after(p.clone(), after);
            }
        }
        // Load what the rules ask for, then explain on the full picture.
        authz::decide(ruleset, &request, &mut loaded, &**self.store()).await?;
        let decision = ruleset.explain(&request, &loaded.prefetch);
        let target = authz::target_name(&request.target);
        Ok(authz::details(origin, request.method, &target, &decision))
    }
}

/// Compiles rules source, mapping diagnostics to an `invalid-argument` error whose details list
/// them.
pub fn compile_rules(source: &str) -> Result<Ruleset, EngineError> {
    Ruleset::compile(source).map_err(|diagnostics| EngineError::InvalidArgument {
        message: format!(
            "the rules do not compile; the active rules stay:\n{}",
            claimdb_rules::render(&diagnostics)
        ),
        write_index: None,
    })
}
