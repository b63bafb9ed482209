//! The JWKS cache of one provider: the current [`KeySet`], when and how it was fetched, and the
//! refresh policy — `max-age` clamped to bounds, refresh before expiry, one shared fetch for
//! concurrent callers, on-demand refetch (unknown `kid`, no keys yet) at most once per interval,
//! last-known keys kept through outages up to a staleness bound, persisted after every good
//! fetch and loaded at start.
//!
//! Every decision takes `now` from the caller, so tests drive it with a manual clock. Scheduling
//! (the background loop) is in `verify.rs`; the network is behind [`Fetcher`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::config::{KeyCacheConfig, KeySource};
use crate::error::FetchError;
use crate::io::{Fetcher, KeyPersistence, PersistedKeys};
use crate::keys::KeySet;

/// Counters and gauges of one provider's key cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMetrics {
    pub provider: String,
    /// Key-document fetch attempts (discovery documents not counted).
    pub fetches: u64,
    pub failures: u64,
    /// Refetches triggered by requests (unknown `kid` or no keys yet).
    pub on_demand_fetches: u64,
    /// Requests that wanted a refetch but were inside the rate-limit interval.
    pub rate_limited: u64,
    pub keys: usize,
    /// The key ids (`kid`) of the keys in use, sorted (keys without one are not listed).
    pub kids: Vec<String>,
    /// Time since the keys in use were fetched.
    pub key_age: Option<Duration>,
    pub loaded_from_persistence: bool,
    pub last_error: Option<String>,
}

/// Why a refresh is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefreshKind {
    /// Startup or the background schedule: always fetches (unless another fetch just finished).
    Scheduled,
    /// A request needs a key it does not find (`kid`; `None`: any key): rate limited per
    /// provider.
    OnDemand { kid: Option<String> },
}

/// How a [`ProviderKeys::refresh`] call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refreshed {
    /// This call fetched (successfully or not: see `last_error`).
    Fetched,
    /// A fetch that was in flight when the call came finished meanwhile; its outcome stands.
    Shared,
    /// An on-demand refetch inside the rate-limit interval: nothing was fetched.
    RateLimited,
    /// A fetch is still in flight after the wait (the IdP is slow or hangs).
    StillFetching,
}

#[derive(Debug, Default)]
struct State {
    keys: Arc<KeySet>,
    fetched_at: Option<SystemTime>,
    /// When the next scheduled refresh is due.
    refresh_due: Option<SystemTime>,
    last_on_demand: Option<SystemTime>,
    failures_in_row: u32,
    last_error: Option<String>,
    jwks_uri_from_discovery: Option<String>,
    from_persistence: bool,
}

pub(crate) struct ProviderKeys {
    name: String,
    issuer_for_discovery: Option<String>,
    source: KeySource,
    cfg: Arc<KeyCacheConfig>,
    fetcher: Arc<dyn Fetcher>,
    persistence: Arc<dyn KeyPersistence>,
    state: RwLock<State>,
    /// Held for the whole of a fetch: concurrent refreshes queue here and share its result.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Fetches begun and fetches ended: a caller that queued behind a fetch takes its answer
    /// only if that fetch began after the caller queued, or (begun earlier) brought what the
    /// caller needs — an older fetch may have asked the IdP before a new key was published.
    started: AtomicU64,
    generation: AtomicU64,
    fetches: AtomicU64,
    failures: AtomicU64,
    on_demand: AtomicU64,
    rate_limited: AtomicU64,
}

impl ProviderKeys {
    pub(crate) fn new(
        name: String,
        issuer_for_discovery: Option<String>,
        source: KeySource,
        cfg: Arc<KeyCacheConfig>,
        fetcher: Arc<dyn Fetcher>,
        persistence: Arc<dyn KeyPersistence>,
    ) -> Self {
        Self {
            name,
            issuer_for_discovery,
            source,
            cfg,
            fetcher,
            persistence,
            state: RwLock::new(State::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
            started: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            on_demand: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// The keys in use, unless there are none or they are older than the staleness bound.
    pub(crate) fn current(&self, now: SystemTime) -> Result<Arc<KeySet>, String> {
        if let KeySource::Local(l) = &self.source {
            return Ok(l.source.key_set());
        }
        let s = self
            .state
            .read()
            .map_err(|_| "key state poisoned".to_owned())?;
        let Some(fetched_at) = s.fetched_at else {
            return Err(match &s.last_error {
                Some(e) => format!("no keys could be fetched yet ({e})"),
                None => "its keys have not been fetched yet".to_owned(),
            });
        };
        let age = now.duration_since(fetched_at).unwrap_or(Duration::ZERO);
        if age > Duration::from_secs(self.cfg.max_stale_secs) {
            return Err(format!(
                "its last keys are {} s old, beyond the {} s staleness bound, and refreshing failed ({})",
                age.as_secs(),
                self.cfg.max_stale_secs,
                s.last_error.as_deref().unwrap_or("no error recorded")
            ));
        }
        Ok(Arc::clone(&s.keys))
    }

    /// Whether the keys in use (not too stale) still include `kid` — the cache-hit check, done
    /// under the read lock without cloning anything.
    pub(crate) fn still_publishes(&self, kid: Option<&str>, now: SystemTime) -> bool {
        if let KeySource::Local(l) = &self.source {
            return kid.is_none_or(|k| l.source.key_set().contains_kid(k));
        }
        let Ok(s) = self.state.read() else {
            return false;
        };
        let fresh = s.fetched_at.is_some_and(|t| {
            now.duration_since(t).unwrap_or(Duration::ZERO)
                <= Duration::from_secs(self.cfg.max_stale_secs)
        });
        fresh && kid.is_none_or(|k| s.keys.contains_kid(k))
    }

    /// Why the most recent fetch failed; `None` if it succeeded (or none ran yet).
    pub(crate) fn last_error(&self) -> Option<String> {
        match self.state.read() {
            Ok(s) => s.last_error.clone(),
            Err(_) => Some("key state poisoned".to_owned()),
        }
    }

    pub(crate) fn has_usable_keys(&self, now: SystemTime) -> bool {
        self.current(now).is_ok_and(|k| !k.is_empty())
    }

    /// When the next scheduled refresh should run (`None`: right away).
    pub(crate) fn refresh_due(&self) -> Option<SystemTime> {
        if matches!(self.source, KeySource::Local(_)) {
            // Nothing to fetch on a schedule; reloads happen on an unknown kid only.
            return SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(u64::from(u32::MAX)));
        }
        self.state.read().ok().and_then(|s| s.refresh_due)
    }

    /// Installs the persisted copy if there are no keys yet and it is not too stale.
    pub(crate) async fn load_persisted(&self, now: SystemTime) {
        if matches!(self.source, KeySource::Local(_)) {
            return;
        }
        if self.state.read().is_ok_and(|s| s.fetched_at.is_some()) {
            return;
        }
        let loaded = match self.persistence.load(&self.name).await {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(provider = %self.name, error = %e, "loading persisted keys failed");
                return;
            }
        };
        let age = now
            .duration_since(loaded.fetched_at)
            .unwrap_or(Duration::ZERO);
        if age > Duration::from_secs(self.cfg.max_stale_secs) {
            return;
        }
        let Ok(keys) = self.parse(&loaded.body) else {
            return;
        };
        if keys.is_empty() {
            return;
        }
        if let Ok(mut s) = self.state.write()
            && s.fetched_at.is_none()
        {
            s.keys = Arc::new(keys);
            s.fetched_at = Some(loaded.fetched_at);
            s.refresh_due = Some(now);
            s.from_persistence = true;
        }
    }

    /// Fetches unless a fetch finished while we queued, or (on demand) the rate limit says no.
    /// Waits for an in-flight fetch at most `wait`.
    pub(crate) async fn refresh(
        &self,
        now: SystemTime,
        kind: RefreshKind,
        wait: Duration,
    ) -> Refreshed {
        let started = self.started.load(Ordering::Acquire);
        let seen = self.generation.load(Ordering::Acquire);
        let Ok(_guard) = tokio::time::timeout(wait, self.fetch_lock.lock()).await else {
            return Refreshed::StillFetching;
        };
        if self.started.load(Ordering::Acquire) != started {
            // A fetch began after we queued, and has ended (we hold the lock): it is fresh.
            return Refreshed::Shared;
        }
        if self.generation.load(Ordering::Acquire) != seen {
            // A fetch already under way when we queued has ended: enough, unless it lacks the
            // key asked for (it may have asked the IdP before that key was published).
            let enough = match &kind {
                RefreshKind::Scheduled => true,
                RefreshKind::OnDemand { kid } => self.state.read().is_ok_and(|s| match kid {
                    Some(kid) => s.keys.contains_kid(kid),
                    None => !s.keys.is_empty(),
                }),
            };
            if enough {
                return Refreshed::Shared;
            }
        }
        if matches!(kind, RefreshKind::OnDemand { .. }) {
            let interval = Duration::from_secs(self.cfg.unknown_kid_refetch_secs);
            let Ok(mut s) = self.state.write() else {
                return Refreshed::RateLimited;
            };
            let recent = s.last_on_demand.is_some_and(|t| {
                now.duration_since(t).unwrap_or(Duration::ZERO) < interval && t <= now
            });
            if recent {
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
                return Refreshed::RateLimited;
            }
            s.last_on_demand = Some(now);
            self.on_demand.fetch_add(1, Ordering::Relaxed);
        }
        self.started.fetch_add(1, Ordering::AcqRel);
        self.fetch_now(now).await;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Refreshed::Fetched
    }

    async fn fetch_now(&self, now: SystemTime) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        if let KeySource::Local(l) = &self.source {
            let result = l.source.reload().await;
            if let Ok(mut s) = self.state.write() {
                s.fetched_at = Some(now);
                s.last_error = result.err();
                if let Some(e) = &s.last_error {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(provider = %self.name, error = %e, "reloading local keys failed");
                }
            }
            return;
        }
        let result = self.fetch_and_parse().await;
        let mut save = None;
        if let Ok(mut s) = self.state.write() {
            match result {
                Ok((keys, body, max_age)) => {
                    let max_age = self.cfg.clamp_max_age(max_age);
                    s.keys = Arc::new(keys);
                    s.fetched_at = Some(now);
                    // Refresh when four fifths of the lifetime has passed: before expiry.
                    s.refresh_due = now.checked_add(max_age.mul_f64(0.8));
                    s.failures_in_row = 0;
                    s.last_error = None;
                    s.from_persistence = false;
                    save = Some(PersistedKeys {
                        body,
                        fetched_at: now,
                    });
                }
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(provider = %self.name, error = %e, "key fetch failed");
                    s.failures_in_row = s.failures_in_row.saturating_add(1);
                    let backoff = self
                        .cfg
                        .retry_min_secs
                        .saturating_mul(1 << s.failures_in_row.min(6).saturating_sub(1))
                        .min(300);
                    s.refresh_due = now.checked_add(Duration::from_secs(backoff));
                    s.last_error = Some(e.to_string());
                    // A failing JWKS URL from discovery may have moved: re-read discovery next time.
                    s.jwks_uri_from_discovery = None;
                }
            }
        }
        if let Some(p) = save
            && let Err(e) = self.persistence.save(&self.name, &p).await
        {
            tracing::warn!(provider = %self.name, error = %e, "persisting keys failed");
        }
    }

    async fn fetch_and_parse(&self) -> Result<(KeySet, Vec<u8>, Option<Duration>), FetchError> {
        let url = match &self.source {
            KeySource::Discovery(d) => self.jwks_uri_via_discovery(d).await?,
            KeySource::Jwks(u) | KeySource::X509(u) => u.clone(),
            KeySource::Local(l) => return Ok(((*l.source.key_set()).clone(), Vec::new(), None)),
        };
        let doc = self.get(&url).await?;
        let keys = self
            .parse(&doc.body)
            .map_err(|message| FetchError::Document {
                url: url.clone(),
                message,
            })?;
        if keys.is_empty() {
            return Err(FetchError::Document {
                url,
                message: "it holds no usable signing key".into(),
            });
        }
        Ok((keys, doc.body, doc.max_age))
    }

    async fn get(&self, url: &str) -> Result<crate::io::FetchedDocument, FetchError> {
        let limit = Duration::from_millis(self.cfg.fetch_timeout_ms);
        match tokio::time::timeout(limit, self.fetcher.get(url)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout {
                url: url.to_owned(),
                after: limit,
            }),
        }
    }

    async fn jwks_uri_via_discovery(&self, discovery: &str) -> Result<String, FetchError> {
        if let Some(u) = self
            .state
            .read()
            .ok()
            .and_then(|s| s.jwks_uri_from_discovery.clone())
        {
            return Ok(u);
        }
        let doc = self.get(discovery).await?;
        let bad = |message: String| FetchError::Document {
            url: discovery.to_owned(),
            message,
        };
        let v: Value =
            serde_json::from_slice(&doc.body).map_err(|e| bad(format!("not JSON: {e}")))?;
        let issuer = v.get("issuer").and_then(Value::as_str);
        if let Some(want) = &self.issuer_for_discovery
            && issuer != Some(want.as_str())
        {
            return Err(bad(format!(
                "its issuer {issuer:?} differs from the configured issuer {want:?}"
            )));
        }
        let jwks = v
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("it has no jwks_uri".into()))?
            .to_owned();
        let parsed =
            reqwest::Url::parse(&jwks).map_err(|e| bad(format!("jwks_uri is not a URL: {e}")))?;
        let host = parsed.host_str().unwrap_or("");
        let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
        if !(parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback)) {
            return Err(bad(format!("jwks_uri {jwks:?} is not https")));
        }
        if let Ok(mut s) = self.state.write() {
            s.jwks_uri_from_discovery = Some(jwks.clone());
        }
        Ok(jwks)
    }

    fn parse(&self, body: &[u8]) -> Result<KeySet, String> {
        match self.source {
            KeySource::X509(_) => KeySet::from_x509_map(body),
            KeySource::Jwks(_) | KeySource::Discovery(_) => KeySet::from_jwks(body),
            KeySource::Local(_) => Err("local keys are not parsed from a document".into()),
        }
    }

    pub(crate) fn metrics(&self, now: SystemTime) -> KeyMetrics {
        let local = match &self.source {
            KeySource::Local(l) => Some(l.source.key_set()),
            _ => None,
        };
        let (keys, kids, key_age, from_persistence, last_error) = match self.state.read() {
            Ok(s) => (
                local.as_ref().map_or(s.keys.len(), |k| k.len()),
                local.as_ref().map_or_else(|| s.keys.kids(), |k| k.kids()),
                s.fetched_at
                    .map(|t| now.duration_since(t).unwrap_or(Duration::ZERO)),
                s.from_persistence,
                s.last_error.clone(),
            ),
            Err(_) => (
                0,
                Vec::new(),
                None,
                false,
                Some("key state poisoned".into()),
            ),
        };
        KeyMetrics {
            provider: self.name.clone(),
            fetches: self.fetches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            on_demand_fetches: self.on_demand.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            keys,
            kids,
            key_age,
            loaded_from_persistence: from_persistence,
            last_error,
        }
    }
}
