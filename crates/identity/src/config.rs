//! Access-provider configuration: the raw `[[providers]]` tables the CLI deserializes
//! ([`ProviderConfig`], [`KeyCacheConfig`]) and what they validate into ([`Provider`], with its
//! [`KeySource`] and [`IssuerMatch`]). The validation itself, presets applied, is
//! `validate.rs`'s (explicit fields always win over what a preset fills in; tests point a
//! preset's keys at a loopback server that way).
//!
//! This file does no IO and knows nothing of how the file is found or merged with the
//! environment; that is the CLI's job.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

pub use crate::alg::Alg;
use crate::error::ConfigError;
use crate::keys::KeySet;
use crate::roles::RoleMapping;

/// The `{tenantid}` placeholder of a multi-tenant issuer template (Entra's own spelling).
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// Firebase Auth's X.509 certificate map for ID tokens.
pub const FIREBASE_X509_URI: &str =
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com";

/// One `[[providers]]` table as written in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    /// Fills issuer, key source and (for Firebase) audience from the fields below.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// `firebase`: the Firebase project id.
    #[serde(default)]
    pub project_id: Option<String>,
    /// `auth0` / `okta`: the tenant's host name, e.g. `example.eu.auth0.com`.
    #[serde(default)]
    pub domain: Option<String>,
    /// `okta`: the authorization server id (default `default`).
    #[serde(default)]
    pub authorization_server: Option<String>,
    /// `entra`: a tenant id, or `organizations` / `common` for multi-tenant apps.
    #[serde(default)]
    pub tenant: Option<String>,
    /// `keycloak`: the realm URL, e.g. `https://kc.example.com/realms/main`.
    #[serde(default)]
    pub realm_url: Option<String>,
    /// With a `{tenantid}` issuer: accept only these tenants (default: any tenant).
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
    /// Exact `iss`; may contain `{tenantid}` once as a whole path segment.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Other exact spellings of the same issuer (Google signs with both
    /// `https://accounts.google.com` and `accounts.google.com`).
    #[serde(default)]
    pub additional_issuers: Option<Vec<String>>,
    /// OpenID configuration URL whose `jwks_uri` is used.
    #[serde(default)]
    pub discovery: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// A JSON map `{kid: PEM certificate}` (the form Firebase Auth publishes).
    #[serde(default)]
    pub x509_uri: Option<String>,
    #[serde(default)]
    pub audience: Option<OneOrMany>,
    #[serde(default)]
    pub algorithms: Option<Vec<Alg>>,
    #[serde(default)]
    pub uid_claim: Option<String>,
    /// Seconds of clock skew tolerated for `exp`, `nbf` and `iat` (default 60, at most 600).
    #[serde(default)]
    pub clock_skew: Option<u64>,
    #[serde(default)]
    pub roles: Vec<RoleMapping>,
    /// Login settings (used by the login flow, not by verification).
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Firebase,
    Auth0,
    Entra,
    Okta,
    Keycloak,
    Google,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Where a provider's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Discovery(String),
    Jwks(String),
    X509(String),
    /// Keys held in this process (claimdb's own issuer, a configured PEM key): read live on
    /// every verification, never fetched, cached or persisted by the verifier.
    Local(LocalKeys),
}

impl KeySource {
    /// The URL keys are fetched from (for [`KeySource::Local`], its label).
    pub fn url(&self) -> &str {
        match self {
            KeySource::Discovery(u) | KeySource::Jwks(u) | KeySource::X509(u) => u,
            KeySource::Local(l) => &l.label,
        }
    }
}

/// The live keys behind a [`KeySource::Local`].
#[async_trait]
pub trait LocalKeySource: Send + Sync {
    /// The keys as they are now (a rotation shows up on the next call). Called on every
    /// verification, so it only reads memory.
    fn key_set(&self) -> Arc<KeySet>;
    /// Re-reads the keys from where they live, for keys another process may have changed.
    /// Called when a token names an unknown `kid`, rate limited like a refetch, and awaited
    /// like one: an implementation whose IO blocks moves it off the async workers itself.
    async fn reload(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A [`LocalKeySource`] with a label for messages and metrics.
#[derive(Clone)]
pub struct LocalKeys {
    pub label: String,
    pub source: Arc<dyn LocalKeySource>,
}

impl std::fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeys")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl PartialEq for LocalKeys {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && Arc::ptr_eq(&self.source, &other.source)
    }
}

impl Eq for LocalKeys {}

/// A fixed key set (a configured PEM public key, or a test's keys).
#[derive(Debug)]
pub struct FixedKeys(pub Arc<KeySet>);

impl LocalKeySource for FixedKeys {
    fn key_set(&self) -> Arc<KeySet> {
        Arc::clone(&self.0)
    }
}

/// How a token's `iss` is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerMatch {
    Exact(String),
    /// `prefix{tenantid}suffix`; the token's `tid` must equal the segment.
    TenantTemplate {
        prefix: String,
        suffix: String,
    },
}

impl IssuerMatch {
    /// For a template, the tenant the `iss` names; `Some("")` never happens.
    pub fn tenant_of<'a>(&self, iss: &'a str) -> Option<&'a str> {
        match self {
            IssuerMatch::Exact(_) => None,
            IssuerMatch::TenantTemplate { prefix, suffix } => {
                let tenant = iss
                    .strip_prefix(prefix.as_str())?
                    .strip_suffix(suffix.as_str())?;
                let ok = !tenant.is_empty()
                    && tenant.len() <= 64
                    && tenant
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                ok.then_some(tenant)
            }
        }
    }

    pub fn display(&self) -> String {
        match self {
            IssuerMatch::Exact(s) => s.clone(),
            IssuerMatch::TenantTemplate { prefix, suffix } => {
                format!("{prefix}{TENANT_PLACEHOLDER}{suffix}")
            }
        }
    }
}

/// A validated access provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub issuer: IssuerMatch,
    /// Further exact issuers routed to this provider.
    pub additional_issuers: Vec<String>,
    pub keys: KeySource,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Alg>,
    pub uid_claim: String,
    pub clock_skew: Duration,
    pub roles: Vec<RoleMapping>,
    /// For a `{tenantid}` issuer, the accepted tenants; empty accepts any.
    pub tenants: Vec<String>,
    /// Roles taken as written from this claim (an array of strings), besides the mappings.
    /// Only for issuers whose `roles` claim claimdb itself wrote (its own tokens); never set
    /// from the config file, where a token's claims must not choose its roles.
    pub trusted_roles_claim: Option<String>,
}

impl Provider {
    /// Every exact issuer routed to this provider.
    pub fn exact_issuers(&self) -> Vec<&str> {
        let main = match &self.issuer {
            IssuerMatch::Exact(i) => Some(i.as_str()),
            IssuerMatch::TenantTemplate { .. } => None,
        };
        main.into_iter()
            .chain(self.additional_issuers.iter().map(String::as_str))
            .collect()
    }
}

/// JWKS cache behaviour, shared by all providers (`[identity]` or similar in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyCacheConfig {
    /// `Cache-Control: max-age` is clamped to at least this many seconds.
    pub min_max_age_secs: u64,
    /// … and to at most this many.
    pub max_max_age_secs: u64,
    /// Used when the IdP sends no `max-age`.
    pub default_max_age_secs: u64,
    /// On an unknown `kid`, refetch at most once per provider per this many seconds.
    pub unknown_kid_refetch_secs: u64,
    /// Last-known keys are served through an IdP outage for at most this long after their fetch.
    pub max_stale_secs: u64,
    /// After a failed fetch, the background task retries after this many seconds (doubling).
    pub retry_min_secs: u64,
    /// A request that arrives while a provider's keys are being fetched for the first time (or
    /// refetched for an unknown `kid`) waits at most this long; then, if the key is still not
    /// known, it is refused as retryable (`keys-unavailable`, or `idp-unreachable` while the
    /// IdP hangs or fails) rather than as a forged token. The fetch itself goes on.
    pub first_fetch_wait_ms: u64,
    /// One HTTP fetch is abandoned after this long.
    pub fetch_timeout_ms: u64,
    /// Verified tokens kept in memory, at most (0 disables the cache).
    pub token_cache_entries: usize,
    /// Heap bytes the verified tokens kept in memory may hold, each charged its token, claims
    /// and bookkeeping (0 disables the cache). The cache's real bound: a token may be 16 KiB.
    pub token_cache_bytes: usize,
}

impl Default for KeyCacheConfig {
    fn default() -> Self {
        Self {
            min_max_age_secs: 60,
            max_max_age_secs: 24 * 3600,
            default_max_age_secs: 3600,
            unknown_kid_refetch_secs: 30,
            max_stale_secs: 3 * 24 * 3600,
            retry_min_secs: 5,
            first_fetch_wait_ms: 1_000,
            fetch_timeout_ms: 5_000,
            token_cache_entries: 100_000,
            token_cache_bytes: 64 << 20,
        }
    }
}

impl KeyCacheConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_max_age_secs == 0 || self.min_max_age_secs > self.max_max_age_secs {
            return Err(ConfigError::Cache(
                "min_max_age_secs must be at least 1 and not above max_max_age_secs".into(),
            ));
        }
        if self.max_stale_secs < self.max_max_age_secs {
            return Err(ConfigError::Cache(
                "max_stale_secs must be at least max_max_age_secs, or keys would be dropped before their refresh".into(),
            ));
        }
        let limits = [
            ("max_max_age_secs", self.max_max_age_secs, 7 * 86_400),
            ("max_stale_secs", self.max_stale_secs, 90 * 86_400),
            (
                "default_max_age_secs",
                self.default_max_age_secs,
                7 * 86_400,
            ),
            (
                "unknown_kid_refetch_secs",
                self.unknown_kid_refetch_secs,
                86_400,
            ),
            ("retry_min_secs", self.retry_min_secs, 3_600),
            ("first_fetch_wait_ms", self.first_fetch_wait_ms, 60_000),
            ("fetch_timeout_ms", self.fetch_timeout_ms, 60_000),
        ];
        for (name, value, max) in limits {
            if value > max {
                return Err(ConfigError::Cache(format!(
                    "{name} is {value}; at most {max} is allowed"
                )));
            }
        }
        if self.retry_min_secs == 0 || self.fetch_timeout_ms == 0 {
            return Err(ConfigError::Cache(
                "retry_min_secs and fetch_timeout_ms must be positive".into(),
            ));
        }
        Ok(())
    }

    /// Clamps a server's `max-age` (or its absence) into the configured bounds.
    pub fn clamp_max_age(&self, max_age: Option<Duration>) -> Duration {
        let secs = max_age.map_or(self.default_max_age_secs, |d| d.as_secs());
        Duration::from_secs(secs.clamp(self.min_max_age_secs, self.max_max_age_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_settings_table() {
        let d = KeyCacheConfig::default();
        assert!(d.validate().is_ok());
        let bad = [
            KeyCacheConfig {
                min_max_age_secs: 0,
                ..d.clone()
            },
            KeyCacheConfig {
                min_max_age_secs: 10,
                max_max_age_secs: 5,
                ..d.clone()
            },
            KeyCacheConfig {
                max_stale_secs: 10,
                ..d.clone()
            },
            KeyCacheConfig {
                retry_min_secs: 0,
                ..d.clone()
            },
            KeyCacheConfig {
                max_max_age_secs: u64::MAX,
                max_stale_secs: u64::MAX,
                ..d.clone()
            },
            KeyCacheConfig {
                fetch_timeout_ms: 3_600_000,
                ..d.clone()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        let c = KeyCacheConfig {
            min_max_age_secs: 60,
            max_max_age_secs: 600,
            default_max_age_secs: 3600,
            ..d
        };
        let s = Duration::from_secs;
        assert_eq!(c.clamp_max_age(Some(s(0))), s(60));
        assert_eq!(c.clamp_max_age(Some(s(300))), s(300));
        assert_eq!(c.clamp_max_age(Some(s(99_999))), s(600));
        assert_eq!(c.clamp_max_age(None), s(600));
    }
}
