//! claimdb's own tokens and browser sessions as operations: the `/v1/token` grants (refresh,
//! RFC 8693 exchange of a provider's token or a Firebase-format custom token), admin minting,
//! the OIDC login (start, callback → user record + session) and logout, the issuer's JWKS and
//! discovery documents, and the sessions behind session cookies ([`SignInHooks`]).
//!
//! [`SignIn`] bundles this crate's pieces (issuer, token service, sessions, login client) over
//! the store's system records; the CLI builds it, hands it to the engine as its
//! [`SignInHooks`] (so the engine authenticates session cookies and revokes refresh tokens) and
//! to the server. This file joins the flows to the engine's user records (custom claims,
//! revocation) and maps their failures to engine errors. HTTP (cookies, redirects, status
//! codes, forms) stays in `server`.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use claimdb_engine::{Clock, Engine, EngineError, LiveSession, RequestContext, SignInHooks, users};
use claimdb_identity::claim_names::reserved_for_minting;
use claimdb_store::Store;
use serde_json::{Map, Value as Json};

use crate::error::IssuerError;
use crate::exchange::{
    Grant, OAuthError, OAuthErrorCode, Subject, TokenResponse, TokenService, UserState, Users,
};
use crate::issuer::{Issuer, MintRequest, Minted};
use crate::login::{CallbackParams, LoginClient, LoginError, LoginStart};
use crate::records::{
    NS_LOGIN, NS_REFRESH, NS_REFRESH_FAMILY, NS_REFRESH_USER, NS_SESSION, RecordsError,
    sweep_expired_after,
};
use crate::session::{SessionIdentity, Sessions, cookies_need_secure};

/// Records examined per namespace per sweep round (the next round resumes after the last).
const SWEEP_SLICE: usize = 5_000;
/// The JWKS route re-reads the key file at most this often, so a rotation by another process
/// (`claimdb token rotate-keys`) is published within seconds, not at the next maintenance.
const JWKS_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// claimdb as an issuer and login broker: everything `/v1/token`, `/v1/login`, `/v1/logout`,
/// the `.well-known` documents and session cookies need.
pub struct SignIn {
    issuer: Arc<Issuer>,
    tokens: TokenService,
    sessions: Sessions,
    login: Option<LoginClient>,
    records: Arc<dyn Store>,
    app_redirects: Vec<String>,
    /// When the JWKS route last re-read the key file.
    jwks_reloaded: std::sync::Mutex<Option<std::time::Instant>>,
    /// The time every grant, login, mint and sweep runs at (the engine's clock in `serve`).
    clock: Clock,
}

impl SignIn {
    /// `tokens` must mint with `issuer`; `records` is the store `tokens` and `login` keep their
    /// records in, and the one holding the user records; `login` is `None` when no provider is
    /// configured for login. Sessions live `issuer`'s `session_ttl`.
    pub fn new(
        issuer: Arc<Issuer>,
        tokens: TokenService,
        login: Option<LoginClient>,
        records: Arc<dyn Store>,
        app_redirects: Vec<String>,
    ) -> SignIn {
        let sessions = Sessions::new(records.clone(), issuer.config().session_ttl);
        SignIn {
            issuer,
            tokens,
            sessions,
            login,
            records,
            app_redirects,
            jwks_reloaded: std::sync::Mutex::new(None),
            clock: Clock::system(),
        }
    }

    /// Runs on `clock` instead of the system's: give it the engine's, so that a test that sets
    /// the engine's time sets sign-in's too.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> SignIn {
        self.clock = clock;
        self
    }

    /// Re-reads the key file if the last re-read is older than `JWKS_RELOAD_EVERY`.
    fn reload_keys_if_due(&self) {
        let due = match self.jwks_reloaded.lock() {
            Ok(mut last) => {
                let now = std::time::Instant::now();
                let due = last.is_none_or(|t| now.duration_since(t) >= JWKS_RELOAD_EVERY);
                if due {
                    *last = Some(now);
                }
                due
            }
            Err(_) => false,
        };
        if !due {
            return;
        }
        // Re-read in a task of its own: this request serves the keys in memory, later ones the
        // reloaded ring. (Outside a runtime there is nothing to run it on; the keys in memory
        // are served and the scheduled maintenance picks up a rotation.)
        let issuer = Arc::clone(&self.issuer);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = claimdb_identity::LocalKeySource::reload(&*issuer).await {
                    tracing::warn!(error = %e, "re-reading the issuer key file failed; serving the keys in memory");
                }
            });
        }
    }

    pub fn issuer(&self) -> &Arc<Issuer> {
        &self.issuer
    }

    /// The public URL (`iss` of claimdb's tokens), without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.issuer.config().issuer
    }

    /// Whether claimdb's cookies must carry `Secure`: everywhere but plain http on loopback.
    pub fn cookies_secure(&self) -> bool {
        cookies_need_secure(self.public_url())
    }

    /// The configured `app_redirects` (login targets; their origins may send cookie requests).
    pub fn app_redirects(&self) -> &[String] {
        &self.app_redirects
    }

    /// The browser sessions (created by [`SignIn::login_callback`]).
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// How long a session (and its cookie) lives.
    pub fn session_ttl(&self) -> Duration {
        self.sessions.ttl()
    }

    /// The providers offering login.
    pub fn login_providers(&self) -> Vec<String> {
        self.login
            .as_ref()
            .map(LoginClient::provider_names)
            .unwrap_or_default()
    }

    /// Deletes expired refresh tokens, families, per-user revocations, login attempts and
    /// sessions, `SWEEP_SLICE` records per namespace per round, every `every`, until the
    /// `SignIn` is dropped. Failures are logged and retried next round.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let namespaces = [
                NS_REFRESH,
                NS_REFRESH_FAMILY,
                NS_REFRESH_USER,
                NS_LOGIN,
                NS_SESSION,
            ];
            let mut cursors: Vec<Option<String>> = vec![None; namespaces.len()];
            loop {
                tokio::time::sleep(every).await;
                let Some(this) = weak.upgrade() else { return };
                for (ns, cursor) in namespaces.iter().zip(cursors.iter_mut()) {
                    match this.sweep(ns, cursor.as_deref(), this.clock.now()).await {
                        Ok((deleted, next)) => {
                            if deleted > 0 {
                                tracing::debug!(namespace = ns, deleted, "expired records swept");
                            }
                            *cursor = next;
                        }
                        Err(e) => {
                            tracing::warn!(namespace = ns, error = %e, "sweeping expired records failed")
                        }
                    }
                }
            }
        })
    }

    /// One sweep slice of `ns` after `after`; returns (deleted, where to resume).
    pub async fn sweep(
        &self,
        ns: &str,
        after: Option<&str>,
        now: SystemTime,
    ) -> Result<(usize, Option<String>), RecordsError> {
        sweep_expired_after(&*self.records, ns, after, now, SWEEP_SLICE).await
    }
}

/// A completed login: put `session_id` in the `claimdb_session` cookie and send the browser to
/// `redirect` (an allow-listed app URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginDone {
    pub uid: String,
    pub session_id: String,
    pub session_ttl: Duration,
    pub redirect: String,
}

/// The token grants' view of the store's user records: custom claims for the claims of minted
/// tokens, `tokens_valid_after` for revocation, and the user's record noted at exchange.
/// Names claimdb writes into its own tokens (`provider`, `roles`) are left out of the custom
/// claims: they would make the mint fail, and the request path overlays every stored custom
/// claim anyway.
/// The user records, as token grants see them, at the grant's time (Unix seconds).
struct StoreUsers<'a>(&'a dyn Store, i64);

fn user_state(record: Option<users::UserRecord>) -> UserState {
    let Some(r) = record else {
        return UserState::default();
    };
    UserState {
        custom_claims: r
            .custom_claims
            .into_iter()
            .filter(|(k, _)| !reserved_for_minting(k))
            .collect(),
        tokens_valid_after: r.tokens_valid_after,
    }
}

#[async_trait]
impl Users for StoreUsers<'_> {
    async fn state(&self, uid: &str) -> Result<UserState, String> {
        let record = users::load(self.0, uid).await.map_err(|e| e.to_string())?;
        Ok(user_state(record))
    }

    async fn signed_in(&self, subject: &Subject) -> Result<UserState, String> {
        let email = subject.carried.get("email").and_then(Json::as_str);
        let record = note_user(self.0, self.1, &subject.uid, &subject.provider, email)
            .await
            .map_err(|e| e.to_string())?;
        Ok(user_state(Some(record)))
    }
}

/// The error of a sign-in operation on a server whose issuer is not enabled.
pub fn not_enabled() -> EngineError {
    EngineError::not_found("claimdb's issuer and login are not enabled on this server")
}

fn storage(e: RecordsError) -> EngineError {
    EngineError::Unavailable {
        message: e.to_string(),
        write_index: None,
    }
}

fn oauth_server_error(message: String) -> OAuthError {
    OAuthError {
        error: OAuthErrorCode::ServerError,
        error_description: message,
        reason: None,
    }
}

fn login_error(e: LoginError) -> EngineError {
    match &e {
        LoginError::UnknownProvider(_) => EngineError::not_found(e.to_string()),
        LoginError::RedirectRefused { .. } | LoginError::MissingState | LoginError::MissingCode => {
            EngineError::invalid_argument(e.to_string())
        }
        LoginError::Discovery(_) | LoginError::Storage(_) => EngineError::Unavailable {
            message: e.to_string(),
            write_index: None,
        },
        LoginError::IdToken(v) if v.is_operational() => EngineError::Unavailable {
            message: e.to_string(),
            write_index: None,
        },
        _ => EngineError::Unauthenticated {
            message: format!("the login failed: {e}"),
            reason: e.reason(),
        },
    }
}

/// Records the user as seen at sign-in: created if new, the first provider kept, the email
/// updated. Writes only when something changed. Returns the record.
async fn note_user(
    store: &dyn Store,
    now: i64,
    uid: &str,
    provider: &str,
    email: Option<&str>,
) -> Result<users::UserRecord, EngineError> {
    users::modify_at(store, uid, now, |r| {
        let mut changed = r.provider.is_none();
        if r.provider.is_none() {
            r.provider = Some(provider.to_owned());
        }
        if let Some(e) = email
            && r.email.as_deref() != Some(e)
        {
            r.email = Some(e.to_owned());
            changed = true;
        }
        changed
    })
    .await
}

impl SignIn {
    /// The JWKS of claimdb's issuer (`/.well-known/jwks.json`), including keys another process
    /// rotated in (the key file is re-read at most once a second).
    pub fn jwks_json(&self) -> Result<String, EngineError> {
        self.reload_keys_if_due();
        self.issuer
            .jwks_json()
            .map_err(|e| EngineError::internal(e.to_string()))
    }

    /// The OpenID discovery document of claimdb's issuer. No `authorization_endpoint` is
    /// advertised: `/v1/login/{provider}` signs browsers in through their provider, it is not
    /// an OAuth authorization endpoint for third-party clients.
    pub fn discovery_document(&self) -> Json {
        self.issuer.discovery_document(None)
    }

    async fn run_grant(&self, grant: Grant) -> Result<TokenResponse, OAuthError> {
        let now = self.clock.now();
        let users = StoreUsers(&*self.records, claimdb_identity::io::unix_secs(now));
        self.tokens.grant(&grant, &users, now).await
    }

    /// Starts a login through `provider`; `redirect` must be under one of `app_redirects`.
    pub async fn login_start(
        &self,
        provider: &str,
        redirect: Option<&str>,
    ) -> Result<LoginStart, EngineError> {
        let login = self.login.as_ref().ok_or_else(|| {
            EngineError::not_found(format!(
                "no login provider is named {provider:?}: no provider has client_id/client_secret"
            ))
        })?;
        login
            .start(provider, redirect, self.clock.now())
            .await
            .map_err(login_error)
    }

    /// Completes a login at the callback: verifies it (state, browser binding, code exchange,
    /// ID token, nonce, at_hash), creates or updates the user record, creates a session.
    pub async fn login_callback(
        &self,
        ctx: &RequestContext,
        provider: &str,
        params: &CallbackParams,
        browser_binding: Option<&str>,
    ) -> Result<LoginDone, EngineError> {
        let login = self.login.as_ref().ok_or_else(|| {
            EngineError::not_found(format!("no login provider is named {provider:?}"))
        })?;
        let now = self.clock.now();
        let outcome = match login.callback(provider, params, browser_binding, now).await {
            Ok(o) => o,
            Err(e) => {
                metrics::counter!("claimdb_logins_total", "outcome" => "refused").increment(1);
                tracing::info!(request_id = %ctx.request_id, provider, reason = e.reason(), "login refused: {e}");
                return Err(login_error(e));
            }
        };
        let token = &outcome.token;
        let email = token.claims.get("email").and_then(Json::as_str);
        let record = note_user(
            &*self.records,
            claimdb_identity::io::unix_secs(now),
            &token.uid,
            &outcome.provider,
            email,
        )
        .await?;
        // The ID token the login produced is a credential like any other: one issued before
        // the user's revocation starts no session. (A revocation landing after this check is
        // caught when the session is used: it carries the ID token's `iat`.)
        users::check_not_revoked(&record, token.iat)?;
        let identity = SessionIdentity {
            uid: token.uid.clone(),
            provider: outcome.provider.clone(),
            roles: token.roles.clone(),
            claims: token.claims.clone(),
        };
        let session = self
            .sessions
            .create(&identity, now)
            .await
            .map_err(storage)?;
        metrics::counter!("claimdb_logins_total", "outcome" => "ok").increment(1);
        tracing::info!(request_id = %ctx.request_id, provider, uid = %token.uid, "login completed");
        Ok(LoginDone {
            uid: token.uid.clone(),
            session_id: session.id,
            session_ttl: self.sessions.ttl(),
            redirect: outcome.redirect,
        })
    }

    /// Ends the session a cookie names; returns whether there was one.
    pub async fn logout(&self, session_id: Option<&str>) -> Result<bool, EngineError> {
        match session_id {
            Some(id) if !id.is_empty() => self.sessions.end(id).await.map_err(storage),
            _ => Ok(false),
        }
    }
}

/// `POST /v1/token`: runs the grant the server read from the form fields (or refuses what it
/// could not read). Failures are OAuth errors (the one API surface whose errors take RFC 6749's
/// shape); without an enabled issuer every grant fails with `server_error`.
pub async fn token_grant(
    sign_in: Option<&SignIn>,
    ctx: &RequestContext,
    grant: Result<Grant, OAuthError>,
) -> Result<TokenResponse, OAuthError> {
    let label = match &grant {
        Ok(Grant::RefreshToken { .. }) => "refresh_token",
        Ok(Grant::TokenExchange { .. }) => "token_exchange",
        Err(_) => "invalid",
    };
    let result = match (grant, sign_in) {
        (Ok(g), Some(s)) => s.run_grant(g).await,
        (Ok(_), None) => Err(oauth_server_error(
            "claimdb's issuer is not enabled on this server".into(),
        )),
        (Err(e), _) => Err(e),
    };
    let outcome = if result.is_ok() { "ok" } else { "refused" };
    metrics::counter!("claimdb_token_grants_total", "grant" => label, "outcome" => outcome)
        .increment(1);
    if let Err(e) = &result {
        tracing::debug!(request_id = %ctx.request_id, grant = label, error = ?e.error, reason = e.reason, "token grant refused");
    }
    result
}

/// Mints a claimdb ID token for `uid` (admin only): `claims` (an object, or null) become
/// custom claims of the token; `ttl` defaults to the issuer's token lifetime (at most an
/// hour). `request.auth.provider` of such a token is `claimdb`. The caller is authorized
/// before anything else is looked at, so without an enabled issuer only an admin learns so.
pub async fn admin_mint_token(
    sign_in: Option<&SignIn>,
    engine: &Engine,
    ctx: &RequestContext,
    uid: &str,
    claims: &Json,
    ttl: Option<Duration>,
) -> Result<Minted, EngineError> {
    engine.authorize_admin(ctx).await?;
    let sign_in = sign_in.ok_or_else(not_enabled)?;
    users::validate_uid(uid)?;
    let claims = match claims {
        Json::Null => Map::new(),
        Json::Object(m) => m.clone(),
        _ => {
            return Err(EngineError::invalid_argument(
                "claims must be a JSON object (or omitted)",
            ));
        }
    };
    let request = MintRequest {
        uid: uid.to_owned(),
        claims,
        ttl,
        ..MintRequest::default()
    };
    let minted = sign_in
        .issuer
        .mint(&request, sign_in.clock.now())
        .map_err(|e| match e {
            IssuerError::InvalidRequest(m) => EngineError::invalid_argument(m),
            other => EngineError::internal(other.to_string()),
        })?;
    tracing::info!(request_id = %ctx.request_id, uid, kid = %minted.kid, "token minted through the admin API");
    Ok(minted)
}

#[async_trait]
impl SignInHooks for SignIn {
    async fn session(&self, id: &str, now: SystemTime) -> Result<Option<LiveSession>, EngineError> {
        let Some(session) = self.sessions.get(id, now).await.map_err(storage)? else {
            return Ok(None);
        };
        let identity = session.identity;
        // A session is as old as the credential it began with: the login's ID token (its
        // `iat`), or the session itself if that is older.
        let created = claimdb_identity::io::unix_secs(session.created);
        let issued_at = identity
            .claims
            .get("iat")
            .and_then(Json::as_i64)
            .map_or(created, |iat| iat.min(created));
        Ok(Some(LiveSession {
            uid: identity.uid,
            provider: identity.provider,
            roles: identity.roles,
            claims: identity.claims,
            issued_at,
        }))
    }

    async fn end_session(&self, id: &str) -> Result<(), EngineError> {
        self.sessions.end(id).await.map_err(storage)?;
        Ok(())
    }

    async fn revoke_refresh_tokens(&self, uid: &str, now: SystemTime) -> Result<(), EngineError> {
        self.tokens
            .refresh_tokens()
            .revoke_user(uid, now)
            .await
            .map_err(|e| EngineError::Unavailable {
                message: format!("revoking the refresh tokens of {uid}: {e}"),
                write_index: None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issuer::IssuerSettings;
    use crate::refresh::RefreshTokens;
    use crate::signing::MemoryKeyStorage;
    use claimdb_engine::{Credential, EngineOptions, RequestContext};
    use claimdb_identity::io::{NoPersistence, SystemClock};
    use claimdb_identity::{HttpFetcher, KeyCacheConfig, Verifier, VerifierDeps};
    use claimdb_store::SqliteStore;
    use serde_json::json;

    struct Env {
        engine: Engine,
        sign_in: Arc<SignIn>,
        _dir: tempfile::TempDir,
    }

    async fn env() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let cfg = IssuerSettings::default()
            .validate("http://127.0.0.1:8787")
            .unwrap();
        let issuer = Issuer::open(
            cfg,
            Arc::new(MemoryKeyStorage::default()),
            SystemTime::now(),
        )
        .await
        .unwrap();
        let deps = VerifierDeps {
            fetcher: Arc::new(HttpFetcher::new(Duration::from_secs(1)).unwrap()),
            persistence: Arc::new(NoPersistence),
            clock: Arc::new(SystemClock),
        };
        let verifier = Arc::new(
            Verifier::new(vec![issuer.provider()], KeyCacheConfig::default(), deps).unwrap(),
        );
        let records: Arc<dyn Store> = store.clone();
        let tokens = TokenService::new(
            issuer.clone(),
            verifier.clone(),
            None,
            RefreshTokens::new(records.clone(), issuer.config().refresh_ttl),
        );
        let sign_in = Arc::new(SignIn::new(issuer, tokens, None, records, Vec::new()));
        let mut options = EngineOptions::new(claimdb_rules::Ruleset::locked(), "test");
        options.verifier = Some(verifier);
        options.sign_in = Some(sign_in.clone() as Arc<dyn SignInHooks>);
        Env {
            engine: Engine::new(store, options),
            sign_in,
            _dir: dir,
        }
    }

    fn session_ctx(id: &str) -> RequestContext {
        RequestContext::new("t").with_credential(Credential::Session(id.to_owned()))
    }

    #[tokio::test]
    async fn a_session_authenticates_with_the_custom_claims_overlay_until_revoked() {
        let e = env().await;
        let identity = SessionIdentity {
            uid: "alice".into(),
            provider: "op".into(),
            roles: vec!["staff".into()],
            claims: json!({"sub": "alice", "email": "a@example.com"})
                .as_object()
                .cloned()
                .unwrap(),
        };
        let s = e
            .sign_in
            .sessions
            .create(&identity, SystemTime::now() - Duration::from_secs(5))
            .await
            .unwrap();
        let p = e
            .engine
            .authenticate(&session_ctx(&s.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((p.uid.as_str(), p.provider.as_str()), ("alice", "op"));
        assert_eq!(p.roles, vec!["staff".to_owned()]);
        assert_eq!(p.claims()["email"], "a@example.com");
        users::modify_at(
            &**e.engine.store(),
            "alice",
            e.engine.clock().unix_secs(),
            |r| {
                r.custom_claims = json!({"moderator": true}).as_object().cloned().unwrap();
                true
            },
        )
        .await
        .unwrap();
        let p = e
            .engine
            .authenticate(&session_ctx(&s.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.claims()["moderator"], true, "custom claims apply at once");
        // An unknown session is refused, not treated as anonymous.
        let err = e
            .engine
            .authenticate(&session_ctx(&"x".repeat(43)))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            EngineError::Unauthenticated {
                reason: "unknown-session",
                ..
            }
        ));
        // Revocation kills sessions begun before it (and the session record goes).
        users::modify_at(
            &**e.engine.store(),
            "alice",
            e.engine.clock().unix_secs(),
            |r| {
                r.tokens_valid_after = Some(claimdb_identity::io::unix_secs(SystemTime::now()));
                true
            },
        )
        .await
        .unwrap();
        let err = e
            .engine
            .authenticate(&session_ctx(&s.id))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::Unauthenticated {
                    reason: "revoked",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            e.sign_in
                .sessions
                .get(&s.id, SystemTime::now())
                .await
                .unwrap()
                .is_none()
        );
    }

    /// Sign-in reads the clock it was given (the engine's in `serve`), not the system's: a
    /// token the admin API mints carries that clock's time.
    #[tokio::test]
    async fn sign_in_runs_on_the_injected_clock() {
        use claimdb_identity::io::ManualClock;
        let Env {
            engine,
            sign_in,
            _dir,
        } = env().await;
        let store = engine.store().clone();
        drop(engine);
        let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let manual = Arc::new(ManualClock::new(past));
        let sign_in = Arc::try_unwrap(sign_in)
            .ok()
            .expect("no other holder once the engine is gone")
            .with_clock(Clock::new(manual.clone()));
        let mut options = EngineOptions::new(claimdb_rules::Ruleset::locked(), "test");
        options.admin_key_sha256 = Some(claimdb_engine::admin_key::sha256("k"));
        let engine = Engine::new(store, options);
        let ctx = RequestContext::new("r").with_admin_key(Some("k".into()));
        let minted = admin_mint_token(Some(&sign_in), &engine, &ctx, "bob", &Json::Null, None)
            .await
            .unwrap();
        assert_eq!(minted.iat, 1_700_000_000);
        manual.advance(Duration::from_secs(60));
        let minted = admin_mint_token(Some(&sign_in), &engine, &ctx, "bob", &Json::Null, None)
            .await
            .unwrap();
        assert_eq!(minted.iat, 1_700_000_060);
    }

    #[tokio::test]
    async fn claimdb_tokens_show_the_sign_in_provider() {
        let e = env().await;
        let mint = |provider: Option<&str>| MintRequest {
            uid: "bob".into(),
            provider: provider.map(str::to_owned),
            ..MintRequest::default()
        };
        let now = SystemTime::now();
        let exchanged = e.sign_in.issuer.mint(&mint(Some("entra")), now).unwrap();
        let direct = e.sign_in.issuer.mint(&mint(None), now).unwrap();
        let who =
            |t: &str| RequestContext::new("t").with_credential(Credential::Bearer(t.to_owned()));
        let p = e
            .engine
            .authenticate(&who(&exchanged.token))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.provider, "entra");
        let p = e
            .engine
            .authenticate(&who(&direct.token))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.provider, "claimdb");
    }

    #[tokio::test]
    async fn the_sweeper_removes_expired_sessions_only() {
        let e = env().await;
        let ident = SessionIdentity {
            uid: "carol".into(),
            ..SessionIdentity::default()
        };
        let old = SystemTime::now() - Duration::from_secs(400 * 24 * 3600);
        e.sign_in.sessions.create(&ident, old).await.unwrap();
        let live = e
            .sign_in
            .sessions
            .create(&ident, SystemTime::now())
            .await
            .unwrap();
        let (deleted, next) = e
            .sign_in
            .sweep(NS_SESSION, None, SystemTime::now())
            .await
            .unwrap();
        assert_eq!((deleted, next), (1, None));
        assert!(
            e.sign_in
                .sessions
                .get(&live.id, SystemTime::now())
                .await
                .unwrap()
                .is_some()
        );
    }
}
