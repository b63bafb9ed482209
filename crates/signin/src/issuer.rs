//! claimdb as a token issuer: its key ring (one active signing key, retired keys kept published
//! until every token they signed has expired), rotation on a schedule ([`Issuer::maintain`])
//! and on command ([`Issuer::rotate`]), the JWKS and OpenID discovery documents, and minting of
//! short-lived ID tokens.
//!
//! claimdb's tokens verify through the same [`claimdb_identity::Verifier`] as every provider's: add
//! [`Issuer::provider`] to the verifier's providers. Its key source is [`KeySource::Local`],
//! read live, so a freshly rotated key verifies at once; an unknown `kid` re-reads the key file
//! (rate limited), so a rotation by another process (`claimdb token rotate-keys`) is picked up.
//!
//! Key files are behind [`KeyStorage`], which is asynchronous: opening, rotating, maintaining
//! and reloading are `async` and may run on any task. Every change to the key file is one
//! [`KeyStorage::update`] (load, edit, save under the storage's lock); a new key is generated
//! before it, on a blocking thread (an RSA key takes tens to hundreds of milliseconds), so
//! neither an async worker nor the lock waits for key generation.
//!
//! HTTP routes, refresh tokens and login are elsewhere.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use claimdb_identity::claim_names::{
    ISSUER_PROVIDER_NAME, ISSUER_WRITTEN_CLAIMS, MAX_CUSTOM_CLAIMS_BYTES, PROVIDER_CLAIM,
    RESERVED_CLAIMS, ROLES_CLAIM, STORED_CLAIMS_CLAIM, reserved_for_minting,
};
use claimdb_identity::config::{
    Alg, IssuerMatch, KeySource, LocalKeySource, LocalKeys, OneOrMany, Provider,
};
use claimdb_identity::io::unix_secs;
use claimdb_identity::keys::KeySet;

use crate::error::IssuerError;
use crate::records::random_token;
use crate::signing::{KeyFile, KeyStorage, SigningAlg, SigningKey, StoredKey, to_time};

/// The RFC 8693 grant type (advertised in the discovery document, run by `exchange`).
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// ID tokens claimdb mints live at most this long.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Clock skew the verifier allows for claimdb's tokens; retired keys stay published this much
/// longer than the longest token they may have signed.
const SKEW: Duration = Duration::from_secs(60);
const KEY_FILE_VERSION: u32 = 1;

/// The `[issuer]` table as written in the config file; everything optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// `ES256` (default) or `RS256`, for keys created from now on.
    #[serde(default)]
    pub algorithm: Option<SigningAlg>,
    /// The `aud` of minted tokens (default: the issuer URL). A list allows several; the first
    /// is the default.
    #[serde(default)]
    pub audience: Option<OneOrMany>,
    /// Rotate the signing key when it is older than this many days (default 30; 0 never).
    #[serde(default)]
    pub rotate_after_days: Option<u64>,
    /// Lifetime of minted ID tokens in seconds (default and maximum 3600).
    #[serde(default)]
    pub token_ttl_secs: Option<u64>,
    /// Lifetime of a refresh token in days (default 30); each use gives a new one.
    #[serde(default)]
    pub refresh_token_days: Option<u64>,
    /// Lifetime of a login session in hours (default 168, one week).
    #[serde(default)]
    pub session_hours: Option<u64>,
}

/// Validated issuer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// `iss` of every token: the public URL without a trailing slash.
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithm: SigningAlg,
    /// `None`: no scheduled rotation.
    pub rotate_after: Option<Duration>,
    pub token_ttl: Duration,
    pub refresh_ttl: Duration,
    pub session_ttl: Duration,
}

impl IssuerSettings {
    /// Checks the settings against `public_url` (an absolute http(s) URL without query or
    /// fragment; plain http only on loopback).
    pub fn validate(&self, public_url: &str) -> Result<IssuerConfig, IssuerError> {
        let issuer = normalize_public_url(public_url)?;
        let audiences = match &self.audience {
            None => vec![issuer.clone()],
            Some(OneOrMany::One(a)) => vec![a.clone()],
            Some(OneOrMany::Many(v)) => v.clone(),
        };
        if audiences.is_empty() || audiences.iter().any(String::is_empty) {
            return Err(IssuerError::Config(
                "audience must be one non-empty string or a list of them".into(),
            ));
        }
        let days = |d: u64| Duration::from_secs(d.saturating_mul(86_400));
        let rotate_after = match self.rotate_after_days.unwrap_or(30) {
            0 => None,
            d if d > 3650 => {
                return Err(IssuerError::Config(format!(
                    "rotate_after_days is {d}; at most 3650 is allowed"
                )));
            }
            d => Some(days(d)),
        };
        let ttl = self.token_ttl_secs.unwrap_or(MAX_TOKEN_TTL.as_secs());
        if ttl == 0 || ttl > MAX_TOKEN_TTL.as_secs() {
            return Err(IssuerError::Config(format!(
                "token_ttl_secs is {ttl}; ID tokens live between 1 and {} seconds",
                MAX_TOKEN_TTL.as_secs()
            )));
        }
        let refresh = self.refresh_token_days.unwrap_or(30);
        if refresh == 0 || refresh > 365 {
            return Err(IssuerError::Config(format!(
                "refresh_token_days is {refresh}; use 1 to 365"
            )));
        }
        let session = self.session_hours.unwrap_or(168);
        if session == 0 || session > 24 * 90 {
            return Err(IssuerError::Config(format!(
                "session_hours is {session}; use 1 to 2160"
            )));
        }
        Ok(IssuerConfig {
            issuer,
            audiences,
            algorithm: self.algorithm.unwrap_or(SigningAlg::ES256),
            rotate_after,
            token_ttl: Duration::from_secs(ttl),
            refresh_ttl: days(refresh),
            session_ttl: Duration::from_secs(session * 3600),
        })
    }
}

/// `public_url` without a trailing slash, after checking it is an absolute http(s) URL with
/// no query, fragment or credentials (plain http only on loopback).
pub fn normalize_public_url(public_url: &str) -> Result<String, IssuerError> {
    let bad = |m: &str| IssuerError::Config(format!("public_url {public_url:?} {m}"));
    let url = reqwest::Url::parse(public_url).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain credentials"));
    }
    let host = url.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(bad("must be https (plain http only on loopback)")),
    }
    Ok(public_url.trim_end_matches('/').to_owned())
}

/// Checks a custom-claims object: at most [`MAX_CUSTOM_CLAIMS_BYTES`] serialized, no name
/// [`reserved_for_minting`].
pub fn check_custom_claims(claims: &Map<String, Value>) -> Result<(), String> {
    if let Some(name) = claims.keys().find(|k| reserved_for_minting(k)) {
        return Err(format!(
            "custom claim {name:?} is a reserved claim name; reserved: {}",
            minting_reserved_names().join(", ")
        ));
    }
    let size = Value::Object(claims.clone()).to_string().len();
    if size > MAX_CUSTOM_CLAIMS_BYTES {
        return Err(format!(
            "custom claims are {size} bytes serialized; at most {MAX_CUSTOM_CLAIMS_BYTES} are allowed"
        ));
    }
    Ok(())
}

/// Every name [`reserved_for_minting`], in the order the refusal lists them.
fn minting_reserved_names() -> Vec<&'static str> {
    RESERVED_CLAIMS
        .iter()
        .chain(ISSUER_WRITTEN_CLAIMS)
        .copied()
        .collect()
}

/// What to put in a minted token.
#[derive(Debug, Clone, Default)]
pub struct MintRequest {
    pub uid: String,
    /// Custom claims (checked with [`check_custom_claims`]).
    pub claims: Map<String, Value>,
    /// Claims carried from the sign-in (profile claims such as `email`, a custom token's
    /// developer claims); no reserved names, not counted against the custom-claims limit.
    /// Custom claims win over them.
    pub carried: Map<String, Value>,
    /// Default: the configured token TTL. More than one hour is refused.
    pub ttl: Option<Duration>,
    /// Roles, written to the `roles` claim (omitted when empty).
    pub roles: Vec<String>,
    /// The provider the user signed in with, written to the `provider` claim.
    pub provider: Option<String>,
    /// One of the configured audiences (default: the first).
    pub audience: Option<String>,
    /// When the user authenticated (`auth_time`), if known.
    pub auth_time: Option<i64>,
    /// `claims` are the user's stored custom claims (exchange, refresh), not claims chosen for
    /// this one token (admin minting): their names are listed in [`STORED_CLAIMS_CLAIM`].
    pub claims_are_stored: bool,
}

/// A minted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    pub token: String,
    pub kid: String,
    pub iat: i64,
    pub exp: i64,
}

/// A key of the ring, for listings (`claimdb token rotate-keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: SigningAlg,
    pub created: SystemTime,
    /// `None` for the active key.
    pub retired: Option<SystemTime>,
    /// When a retired key leaves the JWKS.
    pub unpublish_at: Option<SystemTime>,
}

struct Ring {
    active: Arc<SigningKey>,
    file: KeyFile,
    jwks: String,
    set: Arc<KeySet>,
}

/// claimdb's token issuer. Share it in an `Arc`.
pub struct Issuer {
    config: IssuerConfig,
    storage: Arc<dyn KeyStorage>,
    ring: RwLock<Arc<Ring>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Loads the key file, creating the first key if there is none, then applies the schedule
    /// (a rotation that fell due while stopped, pruning of expired retired keys).
    pub async fn open(
        config: IssuerConfig,
        storage: Arc<dyn KeyStorage>,
        now: SystemTime,
    ) -> Result<Arc<Issuer>, IssuerError> {
        let ring = apply_schedule(&config, storage.as_ref(), now, Change::Open).await?;
        Ok(Arc::new(Issuer {
            config,
            storage,
            ring: RwLock::new(Arc::new(ring)),
        }))
    }

    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    fn ring(&self) -> Result<Arc<Ring>, IssuerError> {
        self.ring
            .read()
            .map(|r| Arc::clone(&r))
            .map_err(|_| IssuerError::KeyFile("key ring poisoned".into()))
    }

    fn install(&self, ring: Ring) -> Result<(), IssuerError> {
        let mut g = self
            .ring
            .write()
            .map_err(|_| IssuerError::KeyFile("key ring poisoned".into()))?;
        *g = Arc::new(ring);
        Ok(())
    }

    /// Rotates now: a new active key signs from now on; the old one stays published until
    /// every token it signed has expired. Returns the new key id.
    pub async fn rotate(&self, now: SystemTime) -> Result<String, IssuerError> {
        self.update(now, Change::Rotate).await?;
        Ok(self.ring()?.active.kid.clone())
    }

    /// The schedule: rotates when the active key is older than `rotate_after`, drops retired
    /// keys whose tokens have all expired, and picks up changes made by other processes.
    /// Returns whether the key ring changed. Call it every few minutes.
    pub async fn maintain(&self, now: SystemTime) -> Result<bool, IssuerError> {
        let before = self.ring()?.file.clone();
        self.update(now, Change::Schedule).await?;
        Ok(self.ring()?.file != before)
    }

    async fn update(&self, now: SystemTime, change: Change) -> Result<(), IssuerError> {
        let ring = apply_schedule(&self.config, self.storage.as_ref(), now, change).await?;
        self.install(ring)
    }

    /// Runs [`Issuer::maintain`] every `every` on the injected clock until the issuer is
    /// dropped; failures are logged and retried on the next round.
    pub fn spawn_maintenance(
        self: &Arc<Self>,
        clock: Arc<dyn claimdb_identity::io::Clock>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(issuer) = weak.upgrade() else { return };
                match issuer.maintain(clock.now()).await {
                    Ok(true) => tracing::info!("issuer key ring changed"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "issuer key maintenance failed"),
                }
            }
        })
    }

    /// The keys of the ring, active first.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, IssuerError> {
        let ring = self.ring()?;
        let mut out: Vec<KeyInfo> = ring
            .file
            .keys
            .iter()
            .map(|k| KeyInfo {
                kid: k.kid.clone(),
                alg: k.alg,
                created: to_time(k.created),
                retired: k.retired.map(to_time),
                unpublish_at: k.retired.map(|r| to_time(r) + MAX_TOKEN_TTL + SKEW),
            })
            .collect();
        out.sort_by_key(|k| (k.retired.is_some(), std::cmp::Reverse(k.created)));
        Ok(out)
    }

    /// The JWKS to serve at `/.well-known/jwks.json`: the active key and every retired key
    /// whose tokens may still be valid.
    pub fn jwks_json(&self) -> Result<String, IssuerError> {
        Ok(self.ring()?.jwks.clone())
    }

    /// `<issuer>/.well-known/jwks.json`.
    pub fn jwks_uri(&self) -> String {
        format!("{}/.well-known/jwks.json", self.config.issuer)
    }

    /// The OpenID discovery document for `/.well-known/openid-configuration`.
    /// `authorization_endpoint` is given by the caller when login is offered.
    pub fn discovery_document(&self, authorization_endpoint: Option<&str>) -> Value {
        let iss = &self.config.issuer;
        let mut doc = json!({
            "issuer": iss,
            "jwks_uri": self.jwks_uri(),
            "token_endpoint": format!("{iss}/v1/token"),
            "grant_types_supported": [
                "refresh_token",
                GRANT_TOKEN_EXCHANGE,
            ],
            "token_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "claims_supported": ["iss", "sub", "aud", "iat", "exp", "auth_time", "jti", ROLES_CLAIM, PROVIDER_CLAIM],
        });
        if let (Some(a), Value::Object(m)) = (authorization_endpoint, &mut doc) {
            m.insert("authorization_endpoint".into(), Value::String(a.to_owned()));
        }
        doc
    }

    /// The provider to add to the [`claimdb_identity::Verifier`] so claimdb's tokens verify through the
    /// same path as every other provider's: exact issuer, the configured audiences, ES256 and
    /// RS256 (a key is bound to its own algorithm), `sub` as uid, `roles` claim trusted.
    pub fn provider(self: &Arc<Self>) -> Provider {
        Provider {
            name: ISSUER_PROVIDER_NAME.to_owned(),
            issuer: IssuerMatch::Exact(self.config.issuer.clone()),
            additional_issuers: Vec::new(),
            keys: KeySource::Local(LocalKeys {
                label: format!("claimdb issuer {}", self.config.issuer),
                source: Arc::clone(self) as Arc<dyn LocalKeySource>,
            }),
            audiences: self.config.audiences.clone(),
            algorithms: vec![Alg::ES256, Alg::RS256],
            uid_claim: "sub".to_owned(),
            clock_skew: SKEW,
            roles: Vec::new(),
            tenants: Vec::new(),
            trusted_roles_claim: Some(ROLES_CLAIM.to_owned()),
        }
    }

    /// Mints an ID token with the active key.
    pub fn mint(&self, req: &MintRequest, now: SystemTime) -> Result<Minted, IssuerError> {
        let invalid = |m: String| IssuerError::InvalidRequest(m);
        if req.uid.is_empty() || req.uid.len() > claimdb_identity::MAX_UID_BYTES {
            return Err(invalid(format!(
                "uid must be 1 to {} bytes; it is {}",
                claimdb_identity::MAX_UID_BYTES,
                req.uid.len()
            )));
        }
        let ttl = req.ttl.unwrap_or(self.config.token_ttl);
        if ttl > MAX_TOKEN_TTL {
            return Err(invalid(format!(
                "ttl is {} s; claimdb ID tokens live at most {} s (use a refresh token for longer sessions)",
                ttl.as_secs(),
                MAX_TOKEN_TTL.as_secs()
            )));
        }
        if ttl.as_secs() == 0 {
            return Err(invalid("ttl must be at least one second".into()));
        }
        check_custom_claims(&req.claims).map_err(invalid)?;
        if let Some(name) = req.carried.keys().find(|k| reserved_for_minting(k)) {
            return Err(invalid(format!(
                "carried claim {name:?} is a reserved claim name"
            )));
        }
        let aud = match &req.audience {
            None => self.config.audiences[0].clone(),
            Some(a) if self.config.audiences.contains(a) => a.clone(),
            Some(a) => {
                return Err(invalid(format!(
                    "audience {a:?} is not one of the configured audiences {:?}",
                    self.config.audiences
                )));
            }
        };
        let iat = unix_secs(now);
        let exp = iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(3600));
        let jti = random_token(16).map_err(|e| IssuerError::Crypto(e.to_string()))?;
        let mut payload = req.carried.clone();
        payload.extend(req.claims.iter().map(|(k, v)| (k.clone(), v.clone())));
        payload.insert("iss".into(), Value::String(self.config.issuer.clone()));
        payload.insert("aud".into(), Value::String(aud));
        payload.insert("sub".into(), Value::String(req.uid.clone()));
        payload.insert("iat".into(), Value::from(iat));
        payload.insert("exp".into(), Value::from(exp));
        payload.insert("jti".into(), Value::String(jti));
        if let Some(t) = req.auth_time {
            payload.insert("auth_time".into(), Value::from(t));
        }
        if !req.roles.is_empty() {
            payload.insert(ROLES_CLAIM.into(), json!(req.roles));
        }
        if let Some(p) = &req.provider {
            payload.insert(PROVIDER_CLAIM.into(), Value::String(p.clone()));
        }
        if req.claims_are_stored && !req.claims.is_empty() {
            let names: Vec<&String> = req.claims.keys().collect();
            payload.insert(STORED_CLAIMS_CLAIM.into(), json!(names));
        }
        let ring = self.ring()?;
        let key = &ring.active;
        let header = json!({"alg": key.alg.name(), "typ": "JWT", "kid": key.kid});
        let token = key.sign_jws(&header, &Value::Object(payload))?;
        if token.len() > claimdb_identity::jose::MAX_TOKEN_BYTES {
            return Err(invalid(format!(
                "the token would be {} bytes; verifiers refuse tokens over {} bytes",
                token.len(),
                claimdb_identity::jose::MAX_TOKEN_BYTES
            )));
        }
        Ok(Minted {
            token,
            kid: key.kid.clone(),
            iat,
            exp,
        })
    }

    /// Re-reads the key file (another process may have rotated).
    async fn reload_file(&self) -> Result<(), IssuerError> {
        let file = parse_file(self.storage.load().await?)?
            .ok_or_else(|| IssuerError::KeyFile("the key file disappeared".into()))?;
        if self.ring()?.file != file {
            self.install(build_ring(file)?)?;
        }
        Ok(())
    }
}

#[async_trait]
impl LocalKeySource for Issuer {
    fn key_set(&self) -> Arc<KeySet> {
        self.ring().map(|r| Arc::clone(&r.set)).unwrap_or_default()
    }

    async fn reload(&self) -> Result<(), String> {
        self.reload_file().await.map_err(|e| e.to_string())
    }
}

/// What a read-modify-write of the key file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Opening: the first key if there is none, then the schedule.
    Open,
    /// The schedule (due rotation, pruning); the key file must exist.
    Schedule,
    /// A rotation on command, then the schedule.
    Rotate,
}

/// One read-modify-write of the key file under the storage's lock, returning the key ring it
/// leaves. When the file needs a new key and none was generated yet, the lock is given back
/// (nothing saved), a key is generated off the async workers and the update runs again with
/// it; so at most two rounds, and a key generated in vain (another process rotated in
/// between) is dropped.
async fn apply_schedule(
    config: &IssuerConfig,
    storage: &dyn KeyStorage,
    now: SystemTime,
    change: Change,
) -> Result<Ring, IssuerError> {
    let mut fresh = match change {
        Change::Rotate => Some(generate(config.algorithm, now).await?),
        Change::Open | Change::Schedule => None,
    };
    loop {
        let mut outcome = None;
        storage
            .update(&mut |content| {
                let mut file = match parse_file(content)? {
                    Some(file) => file,
                    None if change == Change::Open => KeyFile::default(),
                    None => return Err(IssuerError::KeyFile("the key file disappeared".into())),
                };
                let Some(changed) =
                    schedule(config, &mut file, now, change == Change::Rotate, &mut fresh)
                else {
                    outcome = Some(None);
                    return Ok(None);
                };
                let content = changed.then(|| encode_file(&mut file)).transpose()?;
                outcome = Some(Some(build_ring(file)?));
                Ok(content)
            })
            .await?;
        match outcome {
            Some(Some(ring)) => return Ok(ring),
            Some(None) if fresh.is_none() => fresh = Some(generate(config.algorithm, now).await?),
            Some(None) | None => {
                return Err(IssuerError::KeyFile("no key ring was built".into()));
            }
        }
    }
}

/// A new key, generated on a blocking thread.
async fn generate(alg: SigningAlg, now: SystemTime) -> Result<SigningKey, IssuerError> {
    tokio::task::spawn_blocking(move || SigningKey::generate(alg, now))
        .await
        .map_err(|e| IssuerError::Crypto(format!("key generation stopped: {e}")))?
}

fn parse_file(content: Option<Vec<u8>>) -> Result<Option<KeyFile>, IssuerError> {
    let Some(bytes) = content else {
        return Ok(None);
    };
    let file: KeyFile = serde_json::from_slice(&bytes)
        .map_err(|e| IssuerError::KeyFile(format!("the key file is not valid: {e}")))?;
    if file.version != KEY_FILE_VERSION {
        return Err(IssuerError::KeyFile(format!(
            "the key file has version {}; this claimdb reads version {KEY_FILE_VERSION}",
            file.version
        )));
    }
    Ok(Some(file))
}

fn encode_file(file: &mut KeyFile) -> Result<Vec<u8>, IssuerError> {
    file.version = KEY_FILE_VERSION;
    serde_json::to_vec_pretty(file)
        .map_err(|e| IssuerError::KeyFile(format!("cannot encode the key file: {e}")))
}

/// Applies rotation (due — which includes a file with no active key — or forced) and pruning
/// to `file`, taking the new key from `fresh`; returns whether it changed, or `None`, leaving
/// `file` as it was, when a rotation is needed and `fresh` holds no key.
fn schedule(
    config: &IssuerConfig,
    file: &mut KeyFile,
    now: SystemTime,
    force_rotate: bool,
    fresh: &mut Option<SigningKey>,
) -> Option<bool> {
    let now_s = unix_secs(now);
    let mut changed = false;
    let active_created = file
        .keys
        .iter()
        .filter(|k| k.retired.is_none())
        .map(|k| k.created)
        .max();
    let due = match (config.rotate_after, active_created) {
        (Some(after), Some(created)) => {
            now_s >= created.saturating_add(i64::try_from(after.as_secs()).unwrap_or(i64::MAX))
        }
        (_, None) => true,
        (None, Some(_)) => false,
    };
    if force_rotate || due {
        let key = fresh.take()?;
        for k in file.keys.iter_mut().filter(|k| k.retired.is_none()) {
            k.retired = Some(now_s);
        }
        file.keys.push(StoredKey::of(&key, None));
        changed = true;
    }
    let keep_for = i64::try_from((MAX_TOKEN_TTL + SKEW).as_secs()).unwrap_or(i64::MAX);
    let before = file.keys.len();
    file.keys
        .retain(|k| k.retired.is_none_or(|r| now_s < r.saturating_add(keep_for)));
    changed |= file.keys.len() != before;
    Some(changed)
}

fn build_ring(file: KeyFile) -> Result<Ring, IssuerError> {
    let mut active: Option<(i64, Arc<SigningKey>)> = None;
    let mut jwks = Vec::new();
    for stored in &file.keys {
        let key = stored.load()?;
        jwks.push(key.public_jwk().clone());
        if stored.retired.is_none() && active.as_ref().is_none_or(|(c, _)| stored.created >= *c) {
            active = Some((stored.created, Arc::new(key)));
        }
    }
    let (_, active) =
        active.ok_or_else(|| IssuerError::KeyFile("the key file has no active key".into()))?;
    let jwks = json!({ "keys": jwks }).to_string();
    let set = KeySet::from_jwks(jwks.as_bytes()).map_err(IssuerError::KeyFile)?;
    if set.len() != file.keys.len() {
        return Err(IssuerError::KeyFile(
            "a stored key could not be published as a JWK".into(),
        ));
    }
    Ok(Ring {
        active,
        file,
        jwks,
        set: Arc::new(set),
    })
}

/// Parses a duration such as `30m`, `1h`, `45s`, `3600` (seconds) — for the CLI's `--ttl`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30m, 1h or 900s"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::MemoryKeyStorage;

    #[test]
    fn settings_validation_table() {
        let ok = IssuerSettings::default()
            .validate("https://db.example.com/")
            .unwrap();
        assert_eq!(ok.issuer, "https://db.example.com");
        assert_eq!(ok.audiences, vec!["https://db.example.com".to_owned()]);
        assert_eq!(ok.algorithm, SigningAlg::ES256);
        assert_eq!(ok.token_ttl, MAX_TOKEN_TTL);
        assert!(
            IssuerSettings::default()
                .validate("http://127.0.0.1:8787")
                .is_ok()
        );
        for bad in [
            "http://db.example.com",
            "ftp://x",
            "not a url",
            "https://a@db.example.com",
            "https://db.example.com/?x=1",
        ] {
            assert!(IssuerSettings::default().validate(bad).is_err(), "{bad}");
        }
        let too_long = IssuerSettings {
            token_ttl_secs: Some(3601),
            ..Default::default()
        };
        assert!(too_long.validate("https://d.example").is_err());
    }

    #[test]
    fn custom_claims_table() {
        let m = |v: Value| v.as_object().cloned().unwrap();
        assert!(check_custom_claims(&m(json!({"moderator": true}))).is_ok());
        for name in [
            "sub", "iss", "exp", "firebase", "roles", "nonce", "provider",
        ] {
            let mut c = Map::new();
            c.insert(name.into(), json!(1));
            assert!(
                check_custom_claims(&c).unwrap_err().contains("reserved"),
                "{name}"
            );
        }
        // `{"a":"…"}` is 8 bytes plus the string.
        assert!(check_custom_claims(&m(json!({"a": "x".repeat(992)}))).is_ok());
        assert!(check_custom_claims(&m(json!({"a": "x".repeat(993)}))).is_err());
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert!(parse_ttl("1d").is_err());
        assert!(parse_ttl("m").is_err());
    }

    #[tokio::test]
    async fn open_creates_then_reuses_the_key() {
        let storage = Arc::new(MemoryKeyStorage::default());
        let cfg = IssuerSettings::default()
            .validate("https://db.example.com")
            .unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let a = Issuer::open(cfg.clone(), storage.clone(), t0)
            .await
            .unwrap();
        let b = Issuer::open(cfg, storage, t0 + Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(a.keys().unwrap(), b.keys().unwrap());
        assert_eq!(a.keys().unwrap().len(), 1);
    }
}
