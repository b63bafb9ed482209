//! The [`Verifier`]: routes a token by its exact `iss` to one provider, checks it against that
//! provider's keys and policy (signature, algorithm, issuer, audience, times, key id and the rest, in a fixed order),
//! answers repeats from the verified-token cache, and runs the key caches' schedule (start,
//! background refresh, readiness, metrics).
//!
//! Signature math is aws-lc-rs's, with keys parsed once per key set (`keys.rs`); header and
//! payload are decoded once, strictly, in `jose.rs` (`decode_for_verify`). This file does no IO of its own: keys come through
//! the injected fetcher. Revocation is not a property of the token: whoever knows the user's
//! records applies it after verification (the engine, from the user record it reads anyway;
//! `claimdb token inspect` likewise), with [`check_not_revoked`](crate::check_not_revoked).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::cache::{KeyMetrics, ProviderKeys, RefreshKind, Refreshed};
pub use crate::claims::VerifiedToken;
use crate::claims::{check_audience, check_times, check_uid};
use crate::config::{Alg, IssuerMatch, KeyCacheConfig, KeySource, Provider, ProviderConfig};
use crate::error::{ConfigError, VerifyError};
use crate::io::{Clock, Fetcher, KeyPersistence, unix_secs};
use crate::jose::{self, MAX_TOKEN_BYTES};
use crate::roles::roles_for;
use crate::token_cache::{Entry, TokenCache};
use crate::validate::validate_providers;

/// Room for the longest signature of a supported key (RSA-8192: 1,024 bytes) plus what
/// base64's conservative length estimate asks for.
const SIGNATURE_BUFFER: usize = 1_032;

/// The verifier's IO.
#[derive(Clone)]
pub struct VerifierDeps {
    pub fetcher: Arc<dyn Fetcher>,
    pub persistence: Arc<dyn KeyPersistence>,
    pub clock: Arc<dyn Clock>,
}

struct ProviderSlot {
    provider: Provider,
    /// Shared with the on-demand refetch task, which may outlive the request that started it.
    keys: Arc<ProviderKeys>,
}

/// Verifies tokens for a fixed set of providers. Share it in an `Arc`.
pub struct Verifier {
    providers: Vec<ProviderSlot>,
    exact: HashMap<String, usize>,
    templates: Vec<usize>,
    cfg: Arc<KeyCacheConfig>,
    clock: Arc<dyn Clock>,
    cache: TokenCache,
}

impl Verifier {
    /// Validates the provider tables and builds a verifier (no IO yet; call [`Verifier::start`]).
    pub fn from_configs(
        configs: &[ProviderConfig],
        cfg: KeyCacheConfig,
        deps: VerifierDeps,
    ) -> Result<Self, ConfigError> {
        Self::new(validate_providers(configs)?, cfg, deps)
    }

    pub fn new(
        providers: Vec<Provider>,
        cfg: KeyCacheConfig,
        deps: VerifierDeps,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let cfg = Arc::new(cfg);
        let mut exact = HashMap::new();
        let mut templates = Vec::new();
        let mut entries = Vec::with_capacity(providers.len());
        for (i, p) in providers.into_iter().enumerate() {
            if matches!(p.issuer, IssuerMatch::TenantTemplate { .. }) {
                templates.push(i);
            }
            for iss in p.exact_issuers() {
                if let Some(j) = exact.insert(iss.to_owned(), i) {
                    let first: &ProviderSlot = &entries[j];
                    return Err(ConfigError::DuplicateIssuer {
                        issuer: iss.to_owned(),
                        first: first.provider.name.clone(),
                        second: p.name.clone(),
                    });
                }
            }
            let discovery_issuer = match (&p.keys, &p.issuer) {
                (KeySource::Discovery(_), IssuerMatch::Exact(iss)) => Some(iss.clone()),
                _ => None,
            };
            let keys = Arc::new(ProviderKeys::new(
                p.name.clone(),
                discovery_issuer,
                p.keys.clone(),
                Arc::clone(&cfg),
                Arc::clone(&deps.fetcher),
                Arc::clone(&deps.persistence),
            ));
            entries.push(ProviderSlot { provider: p, keys });
        }
        Ok(Self {
            providers: entries,
            exact,
            templates,
            cache: TokenCache::new(cfg.token_cache_bytes, cfg.token_cache_entries),
            cfg,
            clock: deps.clock,
        })
    }

    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.iter().map(|e| &e.provider)
    }

    /// The provider a token with this `iss` is routed to (exact match, or a tenant template).
    pub fn provider_for_issuer(&self, iss: &str) -> Option<&Provider> {
        self.route(iss).map(|(i, _)| &self.providers[i].provider)
    }

    fn route<'a>(&self, iss: &'a str) -> Option<(usize, Option<&'a str>)> {
        if let Some(&i) = self.exact.get(iss) {
            return Some((i, None));
        }
        self.templates.iter().find_map(|&i| {
            self.providers[i]
                .provider
                .issuer
                .tenant_of(iss)
                .map(|t| (i, Some(t)))
        })
    }

    /// Loads persisted keys and fetches every provider's keys, concurrently; returns when each
    /// provider has an answer (keys, or a failure bounded by the fetch timeout).
    pub async fn start(&self) {
        let now = self.clock.now();
        let wait = Duration::from_millis(self.cfg.fetch_timeout_ms.saturating_mul(3));
        let each = self.providers.iter().map(|e| async move {
            e.keys.load_persisted(now).await;
            e.keys.refresh(now, RefreshKind::Scheduled, wait).await;
        });
        join_all(each).await;
    }

    /// One round of the background schedule: refreshes every provider whose refresh is due.
    pub async fn refresh_due(&self, now: SystemTime) {
        let wait = Duration::from_millis(self.cfg.fetch_timeout_ms.saturating_mul(3));
        let each = self
            .providers
            .iter()
            .filter(|e| e.keys.refresh_due().is_none_or(|t| t <= now))
            .map(|e| async move {
                e.keys.refresh(now, RefreshKind::Scheduled, wait).await;
            });
        join_all(each).await;
    }

    /// The earliest time any provider's refresh is due (`None`: now).
    pub fn next_refresh(&self) -> Option<SystemTime> {
        let mut next: Option<SystemTime> = None;
        for e in &self.providers {
            let due = e.keys.refresh_due()?;
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        next
    }

    /// Runs [`Verifier::refresh_due`] on the injected clock until the verifier is dropped.
    /// Polls at most every `max_sleep`, so a clock that jumps is noticed.
    pub fn spawn_background(self: &Arc<Self>, max_sleep: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let sleep = {
                    let Some(v) = weak.upgrade() else { return };
                    let now = v.clock.now();
                    v.refresh_due(now).await;
                    let now = v.clock.now();
                    v.next_refresh()
                        .map_or(Duration::from_secs(1), |t| {
                            t.duration_since(now).unwrap_or(Duration::ZERO)
                        })
                        .min(max_sleep)
                        .max(Duration::from_millis(5))
                };
                tokio::time::sleep(sleep).await;
            }
        })
    }

    /// Whether every provider has usable keys (for `/readyz`).
    pub fn ready(&self, now: SystemTime) -> bool {
        self.providers.iter().all(|e| e.keys.has_usable_keys(now))
    }

    pub fn metrics(&self, now: SystemTime) -> Vec<KeyMetrics> {
        self.providers.iter().map(|e| e.keys.metrics(now)).collect()
    }

    /// Entries in the verified-token cache.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// Heap bytes the verified-token cache holds (as it charges them; bounded by
    /// `token_cache_bytes`).
    pub fn cached_token_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Verifies `token` at time `now`.
    pub async fn verify(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<Arc<VerifiedToken>, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::TooLarge {
                size: token.len(),
                limit: MAX_TOKEN_BYTES,
            });
        }
        let now_s = unix_secs(now);
        let key = self.cache.key(token);
        if let Some(hit) = self.cache.get(token, key) {
            if now_s >= hit.dead_at {
                self.cache.remove(token, key);
                let skew = self.providers[hit.provider_index]
                    .provider
                    .clock_skew
                    .as_secs();
                return Err(VerifyError::Expired {
                    exp: hit.token.exp,
                    now: now_s,
                    skew_secs: skew,
                });
            }
            let still_published = self.providers[hit.provider_index]
                .keys
                .still_publishes(hit.kid.as_deref(), now);
            if still_published {
                return Ok(hit.token);
            }
            self.cache.remove(token, key);
        }
        let (entry, kid_owned) = self.verify_uncached(token, now).await?;
        let verified = Arc::new(entry.0);
        let skew =
            i64::try_from(self.providers[entry.1].provider.clock_skew.as_secs()).unwrap_or(0);
        self.cache.insert(
            token,
            key,
            Entry {
                token: Arc::clone(&verified),
                provider_index: entry.1,
                kid: kid_owned.map(Arc::from),
                dead_at: verified.exp.saturating_add(skew),
            },
            now_s,
        );
        Ok(verified)
    }

    /// Everything but the cache: returns the token, the provider index and kid.
    #[allow(clippy::type_complexity)]
    async fn verify_uncached(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<((VerifiedToken, usize), Option<String>), VerifyError> {
        let decoded = jose::decode_for_verify(token)?;
        let alg = decoded.header.check()?;
        if decoded.signature.is_empty() {
            return Err(VerifyError::Malformed(
                "the signature part is empty (an unsigned token)".into(),
            ));
        }
        let iss = match decoded.claims.get("iss") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return Err(VerifyError::Malformed(
                    "the iss claim is not a string".into(),
                ));
            }
            None => return Err(VerifyError::UnknownIssuer(String::new())),
        };
        let (index, tenant) = self
            .route(iss)
            .ok_or_else(|| VerifyError::UnknownIssuer(iss.to_owned()))?;
        let tenant = tenant.map(str::to_owned);
        let entry = &self.providers[index];
        let p = &entry.provider;
        if !p.algorithms.contains(&alg) {
            return Err(VerifyError::AlgorithmNotAllowed {
                alg: alg.name().to_owned(),
                allowed: p.algorithms.iter().map(|a| a.name().to_owned()).collect(),
            });
        }
        let kid = decoded.header.kid();
        let key = self.find_key(entry, kid, alg, now).await?;
        // Decoded on the stack: the longest signature of a supported key (RSA-8192) is 1,024
        // bytes; a longer one cannot verify and is refused as a bad signature below.
        let mut sig = [0u8; SIGNATURE_BUFFER];
        let ok = URL_SAFE_NO_PAD
            .decode_slice(decoded.signature, &mut sig)
            .is_ok_and(|n| {
                sig.get(..n)
                    .is_some_and(|sig| key.verify(alg, decoded.signing_input.as_bytes(), sig))
            });
        if !ok {
            return Err(VerifyError::BadSignature {
                provider: p.name.clone(),
                kid: kid.map(str::to_owned),
            });
        }
        let claims = decoded.claims;
        let (iat, exp) = check_times(&claims, p.clock_skew, unix_secs(now))?;
        check_audience(&claims, &p.audiences)?;
        if let Some(t) = tenant {
            let tid = claims.get("tid").and_then(Value::as_str);
            if tid != Some(t.as_str()) {
                return Err(VerifyError::TenantMismatch {
                    issuer_tenant: t,
                    token_tenant: tid.unwrap_or("(none)").to_owned(),
                });
            }
            if !p.tenants.is_empty() && !p.tenants.contains(&t) {
                return Err(VerifyError::TenantNotAllowed(t));
            }
        }
        let uid = check_uid(&claims, &p.uid_claim)?;
        let mut roles = roles_for(&p.roles, &claims);
        if let Some(name) = &p.trusted_roles_claim
            && let Some(Value::Array(given)) = claims.get(name)
        {
            for r in given.iter().filter_map(Value::as_str) {
                if !roles.iter().any(|x| x == r) {
                    roles.push(r.to_owned());
                }
            }
        }
        let verified = VerifiedToken::new(uid, claims, p.name.clone(), roles, iat, exp);
        Ok(((verified, index), kid.map(str::to_owned)))
    }

    async fn find_key(
        &self,
        entry: &ProviderSlot,
        kid: Option<&str>,
        alg: Alg,
        now: SystemTime,
    ) -> Result<Arc<crate::keys::VerifyKey>, VerifyError> {
        let name = &entry.provider.name;
        let wait = Duration::from_millis(self.cfg.first_fetch_wait_ms);
        if let Ok(keys) = entry.keys.current(now)
            && let Some(k) = keys.find(kid, alg)
        {
            return Ok(Arc::clone(k));
        }
        // No keys yet, or an unknown kid: wait for an in-flight fetch, or refetch (rate limited).
        // The refetch runs in its own task and the request waits for it at most `wait`: when
        // the IdP hangs, the request is answered within that bound while the fetch goes on
        // (bounded by `fetch_timeout_ms`), and what it brings serves the next request.
        let keys = Arc::clone(&entry.keys);
        let kind = RefreshKind::OnDemand {
            kid: kid.map(str::to_owned),
        };
        let refetch = tokio::spawn(async move { keys.refresh(now, kind, wait).await });
        let answered = matches!(
            tokio::time::timeout(wait, refetch).await,
            Ok(Ok(Refreshed::Fetched
                | Refreshed::Shared
                | Refreshed::RateLimited))
        );
        let retry_after_secs = self.cfg.retry_min_secs;
        let keys = entry
            .keys
            .current(now)
            .map_err(|detail| VerifyError::KeysUnavailable {
                provider: name.clone(),
                detail,
                retry_after_secs,
            })?;
        if let Some(k) = keys.find(kid, alg) {
            return Ok(Arc::clone(k));
        }
        // The key is not among the last keys fetched. That proves the token wrong only if the
        // provider could be asked: while its key endpoint hangs or fails, the kid may be new.
        let unreachable = if answered {
            entry.keys.last_error()
        } else {
            Some(format!(
                "its key endpoint did not answer within {} ms",
                wait.as_millis()
            ))
        };
        match unreachable {
            Some(detail) => Err(VerifyError::IdpUnreachable {
                provider: name.clone(),
                kid: kid.map(str::to_owned),
                detail,
                retry_after_secs,
            }),
            None => Err(VerifyError::UnknownKey {
                provider: name.clone(),
                kid: kid.map(str::to_owned),
                alg: alg.name().to_owned(),
            }),
        }
    }
}

/// Runs futures concurrently on the current task (no extra crate for one join).
async fn join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}
