//! Configuration: the TOML file, `CLAIMDB_<KEY>` environment overrides and command-line flags,
//! merged in that order of increasing precedence into one validated [`Config`].
//!
//! Unknown keys are refused rather than ignored: a misspelt security setting must never be
//! silently dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use claimdb_identity::{KeyCacheConfig, ProviderConfig, validate_providers};
use claimdb_signin::{CustomTokenSignerConfig, IssuerConfig, IssuerSettings, RedirectPolicy};
use serde::Deserialize;

use crate::storage::Storage;

/// Default address: loopback only, so a fresh dev instance is never exposed by accident.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
pub(crate) const DEFAULT_DATA_DIR: &str = "./claimdb-data";

/// Every top-level key the file may hold; each is overridable as `CLAIMDB_<KEY>`.
const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "max_body_bytes",
    "log",
    "providers",
    "key_cache",
    "rules",
    "rules_from",
    "audit",
    "admin_key",
    "admin_roles",
    "explain_denials",
    "public_url",
    "app_redirects",
    "cors_origins",
    "issuer",
    "custom_token_signers",
    "storage",
    "postgres_url",
    "postgres_schema",
    "postgres_pool_size",
    "header_read_timeout_ms",
    "idle_timeout_ms",
    "body_read_timeout_ms",
    "shutdown_timeout_ms",
    "max_connections",
    "wal_max_bytes",
    "history_retention_secs",
    "audit_max_bytes",
    "audit_retention_days",
    "query_max_examined",
    "project_id",
    "emulator",
    "emulator_force",
];

/// Every configuration key, for `claimdb serve --help`.
pub(crate) fn keys_help() -> String {
    format!(
        "Configuration keys (TOML file, or environment variables CLAIMDB_<KEY>): {}. See the \
         README's configuration section.",
        KEYS.join(", ")
    )
}

/// The file's keys as written, before defaults and validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    project_id: Option<String>,
    data_dir: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    log: Option<String>,
    #[serde(default)]
    providers: Vec<ProviderConfig>,
    key_cache: Option<KeyCacheConfig>,
    rules: Option<PathBuf>,
    rules_from: Option<String>,
    audit: Option<bool>,
    admin_key: Option<String>,
    #[serde(default)]
    admin_roles: Vec<String>,
    explain_denials: Option<bool>,
    public_url: Option<String>,
    #[serde(default)]
    app_redirects: Vec<String>,
    cors_origins: Option<OneOrList>,
    issuer: Option<IssuerSettings>,
    #[serde(default)]
    custom_token_signers: Vec<CustomTokenSignerConfig>,
    storage: Option<String>,
    postgres_url: Option<String>,
    postgres_schema: Option<String>,
    postgres_pool_size: Option<usize>,
    header_read_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    body_read_timeout_ms: Option<u64>,
    shutdown_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    wal_max_bytes: Option<u64>,
    history_retention_secs: Option<u64>,
    audit_max_bytes: Option<u64>,
    audit_retention_days: Option<u64>,
    query_max_examined: Option<usize>,
    emulator: Option<bool>,
    emulator_force: Option<bool>,
}

/// A list written as a TOML array, or as one string of comma-separated items (the form an
/// environment variable takes: `CLAIMDB_CORS_ORIGINS=https://a.example,https://b.example`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrList {
    List(Vec<String>),
    One(String),
}

impl OneOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrList::List(list) => list,
            OneOrList::One(text) => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

/// How long a client may take and how much it may hold (validated; defaults in
/// `claimdb_server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// `header_read_timeout_ms`: a request head must be complete this long after its first byte.
    pub header_read_timeout: Duration,
    /// `idle_timeout_ms`: a connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
    /// `body_read_timeout_ms`: a request body must be complete this long after its head.
    pub body_read_timeout: Duration,
    /// `shutdown_timeout_ms`: how long requests in progress get after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    /// `max_connections`: most connections open at once (lowered at start to fit the open-file
    /// limit).
    pub max_connections: usize,
}

impl ConnectionLimits {
    fn from_raw(raw: &RawConfig) -> anyhow::Result<ConnectionLimits> {
        // A client timeout under 100 ms would cut off ordinary clients on a slow network.
        let timeout = |key: &str,
                       value: Option<u64>,
                       default: Duration|
         -> anyhow::Result<Duration> {
            match value {
                None => Ok(default),
                Some(ms) if (100..=3_600_000).contains(&ms) => Ok(Duration::from_millis(ms)),
                Some(ms) => bail!("{key} = {ms} is out of range; use 100 to 3600000 (one hour)"),
            }
        };
        let shutdown_timeout = match raw.shutdown_timeout_ms {
            None => claimdb_server::DEFAULT_SHUTDOWN_TIMEOUT,
            Some(ms) if ms <= 600_000 => Duration::from_millis(ms),
            Some(ms) => {
                bail!("shutdown_timeout_ms = {ms} is out of range; use 0 to 600000 (ten minutes)")
            }
        };
        let max_connections = match raw.max_connections {
            None => claimdb_server::DEFAULT_MAX_CONNECTIONS,
            Some(n) if (1..=1_000_000).contains(&n) => n,
            Some(n) => bail!("max_connections = {n} is out of range; use 1 to 1000000"),
        };
        Ok(ConnectionLimits {
            header_read_timeout: timeout(
                "header_read_timeout_ms",
                raw.header_read_timeout_ms,
                claimdb_server::DEFAULT_HEADER_READ_TIMEOUT,
            )?,
            idle_timeout: timeout(
                "idle_timeout_ms",
                raw.idle_timeout_ms,
                claimdb_server::DEFAULT_IDLE_TIMEOUT,
            )?,
            body_read_timeout: timeout(
                "body_read_timeout_ms",
                raw.body_read_timeout_ms,
                claimdb_server::DEFAULT_BODY_READ_TIMEOUT,
            )?,
            shutdown_timeout,
            max_connections,
        })
    }
}

/// The smallest work bound a query page may be given: below it, ordinary queries would end
/// most pages early.
const MIN_QUERY_MAX_EXAMINED: usize = 100;

/// Overrides given as command-line flags.
#[derive(Debug, Default, Clone)]
pub(crate) struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub rules: Option<PathBuf>,
}

/// The known name closest to `name`, if one is close enough to be a likely misspelling.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    known: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    known
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Environment variables that look like claimdb settings but are none: `CLAIMDB_<KEY>` for no
/// key (a misspelling silently ignored otherwise), each with a suggestion when one is close.
/// `CLAIMDB_CONFIG`, the providers' client secrets and the test suite's `CLAIMDB_TEST_*` are
/// known.
pub(crate) fn unknown_env_vars(names: impl Iterator<Item = String>) -> Vec<String> {
    let known: Vec<String> = KEYS
        .iter()
        .map(|k| format!("CLAIMDB_{}", k.to_uppercase()))
        .collect();
    names
        .filter(|n| n.starts_with("CLAIMDB_"))
        .filter(|n| n != "CLAIMDB_CONFIG" && !n.starts_with("CLAIMDB_TEST_"))
        .filter(|n| !(n.starts_with("CLAIMDB_PROVIDER_") && n.ends_with("_CLIENT_SECRET")))
        .filter(|n| !known.contains(n))
        .map(|n| {
            // Compared without the common prefix, which would make every name look close.
            let suffix = n.trim_start_matches("CLAIMDB_").to_lowercase();
            let hint = did_you_mean(&suffix, KEYS.iter().copied().chain(["config"]))
                .map(|k| format!(" (did you mean CLAIMDB_{}?)", k.to_uppercase()))
                .unwrap_or_default();
            format!("environment variable {n} is not a claimdb setting and is ignored{hint}")
        })
        .collect()
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub listen: SocketAddr,
    #[allow(
        dead_code,
        reason = "the data directory stays part of the configuration with PostgreSQL storage; \
                  commands read it through `storage` today"
    )]
    pub data_dir: PathBuf,
    pub max_body_bytes: usize,
    /// The project the Firestore protocols serve (`project_id`, default `demo-claimdb`).
    pub firestore: claimdb_firestore::Database,
    /// Client timeouts, the connection cap and the shutdown deadline.
    pub connections: ConnectionLimits,
    /// A `tracing` filter such as `info` or `claimdb=debug,info`.
    pub log: String,
    /// Identity providers whose tokens are accepted (`[[providers]]`), validated.
    pub providers: Vec<ProviderConfig>,
    /// JWKS and verified-token cache behaviour (`[key_cache]`).
    pub key_cache: KeyCacheConfig,
    /// The Firestore rules file (hot-reloaded); `None`: locked-down rules (deny everything)
    /// until rules are stored through the API.
    pub rules: Option<PathBuf>,
    /// Whether the rules in force are the file's (`rules_from = "file"`, the default with a
    /// rules file) or the newest version stored in the database (`"database"`, the default
    /// without one; a configured file then only seeds version 1 of an empty database).
    pub rules_in_database: bool,
    /// Whether every decision is appended to the audit log in `<data_dir>/audit` (default on).
    pub audit: bool,
    /// The admin key; `None`: one is created at first start and stored only as a hash.
    pub admin_key: Option<String>,
    /// Callers holding any of these roles may use the admin API.
    pub admin_roles: Vec<String>,
    /// Whether `permission-denied` errors explain the denial (default: on without a config
    /// file — the dev server —, off with one).
    pub explain_denials: bool,
    /// claimdb's own issuer (`public_url` + `[issuer]`), validated; `iss` of its tokens.
    /// Without `public_url` it is derived from `listen` (see [`Config::issuer_at`]).
    pub issuer: IssuerConfig,
    /// Whether `public_url` was set (file or `CLAIMDB_PUBLIC_URL`).
    pub public_url_configured: bool,
    /// The `[issuer]` table as written, to derive the issuer for the bound address.
    pub issuer_settings: IssuerSettings,
    /// Where a browser may be sent after login (`app_redirects`).
    pub app_redirects: Vec<String>,
    /// Browser origins allowed to call claimdb cross-origin with bearer tokens (`cors_origins`).
    pub cors_origins: claimdb_server::cors::AppOrigins,
    /// Backends allowed to mint custom tokens (`[[custom_token_signers]]`); relative
    /// `public_key_file`s are resolved against the config file's directory.
    pub custom_token_signers: Vec<CustomTokenSignerConfig>,
    /// Where documents live: `storage = "sqlite"` (in `data_dir`) or `"postgres"`.
    pub storage: Storage,
    /// The audit log keeps at most about this many bytes (`audit_max_bytes`, default 1 GiB).
    pub audit_max_bytes: u64,
    /// The audit log deletes events older than this (`audit_retention_days`, default 90;
    /// `None` with 0: no age limit).
    pub audit_retention: Option<std::time::Duration>,
    /// Documents one page of a query may examine before it ends early with a continuation
    /// token (`query_max_examined`).
    pub query_max_examined: usize,
    /// Emulator mode (`emulator = true`; `claimdb emulator` sets it): unverified tokens,
    /// `Bearer owner`, a database per project id, the emulator's control endpoints.
    pub emulator: bool,
    /// Start in emulator mode even with a configuration that looks like production
    /// (`emulator_force`).
    pub emulator_force: bool,
    /// The file this came from, if any.
    pub source: Option<PathBuf>,
}

impl Config {
    /// Loads `file` (if given), applies the environment `env`, then `overrides`.
    pub(crate) fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> anyhow::Result<Config> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("config file {} is not valid TOML", path.display()))?
            }
            None => toml::Table::new(),
        };
        if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            bail!(
                "unknown config key `{unknown}`{}{}; known keys: {}",
                file.map(|p| format!(" in {}", p.display()))
                    .unwrap_or_default(),
                did_you_mean(unknown, KEYS.iter().copied())
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default(),
                KEYS.join(", ")
            );
        }
        for key in KEYS {
            let var = format!("CLAIMDB_{}", key.to_uppercase());
            if let Some(text) = env(&var) {
                table.insert(key.to_string(), env_value(&text));
            }
        }
        let raw: RawConfig = table.try_into().context("invalid configuration")?;
        let connections = ConnectionLimits::from_raw(&raw)?;
        let listen_text = overrides
            .listen
            .clone()
            .or(raw.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text.parse::<SocketAddr>().with_context(|| {
            format!("listen address {listen_text:?} is not IP:PORT (for example 127.0.0.1:8787)")
        })?;
        let max_body_bytes = raw
            .max_body_bytes
            .unwrap_or(claimdb_server::DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            bail!("max_body_bytes = {max_body_bytes} is too small; use at least 1024");
        }
        let firestore = match raw.project_id {
            Some(project) => claimdb_firestore::Database::new(project)
                .map_err(|e| anyhow::anyhow!("project_id: {e}"))?,
            None => claimdb_firestore::Database::default(),
        };
        let mut providers = raw.providers;
        for p in providers
            .iter_mut()
            .filter(|p| p.client_id.is_some() && p.client_secret.is_none())
        {
            p.client_secret = env(&client_secret_var(&p.name));
        }
        validate_providers(&providers).context("invalid [[providers]]")?;
        if let Some(key) = &raw.admin_key
            && key.len() < 16
        {
            bail!("admin_key is too short; use at least 16 characters (32 random bytes are best)");
        }
        let key_cache = raw.key_cache.unwrap_or_default();
        key_cache.validate().context("invalid [key_cache]")?;
        let query_max_examined = raw
            .query_max_examined
            .unwrap_or(claimdb_engine::DEFAULT_MAX_EXAMINED);
        if query_max_examined < MIN_QUERY_MAX_EXAMINED {
            bail!(
                "query_max_examined = {query_max_examined} is too small; use at least \
                 {MIN_QUERY_MAX_EXAMINED}"
            );
        }
        // Without public_url, a dev instance issues for its own loopback address.
        let public_url_configured = raw.public_url.is_some();
        let public_url = raw.public_url.unwrap_or_else(|| loopback_url(listen));
        let issuer_settings = raw.issuer.unwrap_or_default();
        let issuer = issuer_settings
            .validate(&public_url)
            .context("invalid public_url or [issuer]")?;
        RedirectPolicy::new(&raw.app_redirects)
            .map_err(anyhow::Error::msg)
            .context("invalid app_redirects")?;
        let cors_origins = claimdb_server::cors::AppOrigins::parse(
            &raw.cors_origins
                .map(OneOrList::into_vec)
                .unwrap_or_default(),
        )
        .map_err(anyhow::Error::msg)
        .context("invalid cors_origins")?;
        let base = file.and_then(Path::parent).unwrap_or(Path::new(""));
        let mut custom_token_signers = raw.custom_token_signers;
        for s in &mut custom_token_signers {
            if let Some(p) = &s.public_key_file
                && p.is_relative()
            {
                s.public_key_file = Some(base.join(p));
            }
            s.load().context("invalid [[custom_token_signers]]")?;
        }
        let rules = overrides.rules.clone().or(raw.rules);
        let rules_in_database = match raw.rules_from.as_deref() {
            None => rules.is_none(),
            Some("database") => true,
            Some("file") if rules.is_some() => false,
            Some("file") => {
                bail!("rules_from = \"file\" needs a rules file: set rules = \"firestore.rules\"")
            }
            Some(other) => bail!("rules_from = {other:?}: use \"file\" or \"database\""),
        };
        let data_dir = overrides
            .data_dir
            .clone()
            .or(raw.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let storage = Storage::from_keys(
            raw.storage.as_deref(),
            data_dir.clone(),
            raw.postgres_url.as_deref(),
            raw.postgres_schema.as_deref(),
            raw.postgres_pool_size,
            raw.wal_max_bytes,
            raw.history_retention_secs,
        )?;
        let audit_max_bytes = raw
            .audit_max_bytes
            .unwrap_or(claimdb_audit::DEFAULT_MAX_BYTES);
        if audit_max_bytes < claimdb_audit::MIN_MAX_BYTES {
            bail!(
                "audit_max_bytes = {audit_max_bytes} is too small; use at least {}",
                claimdb_audit::MIN_MAX_BYTES
            );
        }
        let audit_retention = match raw.audit_retention_days {
            None => Some(claimdb_audit::DEFAULT_MAX_AGE),
            Some(0) => None,
            Some(days) if days > 100 * 365 => {
                bail!("audit_retention_days = {days} is too large; use 0 for no age limit")
            }
            Some(days) => Some(std::time::Duration::from_secs(days * 86_400)),
        };
        Ok(Config {
            emulator: raw.emulator.unwrap_or(false),
            emulator_force: raw.emulator_force.unwrap_or(false),
            providers,
            key_cache,
            listen,
            storage,
            audit_max_bytes,
            audit_retention,
            data_dir,
            max_body_bytes,
            firestore,
            connections,
            log: raw.log.unwrap_or_else(|| "info".into()),
            rules,
            rules_in_database,
            audit: raw.audit.unwrap_or(true),
            admin_key: raw.admin_key,
            admin_roles: raw.admin_roles,
            explain_denials: raw.explain_denials.unwrap_or(file.is_none()),
            source: file.map(Path::to_path_buf),
            issuer,
            public_url_configured,
            issuer_settings,
            app_redirects: raw.app_redirects,
            cors_origins,
            custom_token_signers,
            query_max_examined,
        })
    }
}

impl Config {
    /// The HTTP layer's settings. `max_connections` is as configured: `serve` lowers it to fit
    /// the open-file limit.
    pub(crate) fn server_config(&self) -> claimdb_server::ServerConfig {
        let limits = self.connections;
        claimdb_server::ServerConfig {
            max_body_bytes: self.max_body_bytes,
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
            body_read_timeout: limits.body_read_timeout,
            max_connections: limits.max_connections,
            shutdown_timeout: limits.shutdown_timeout,
            firestore: self.firestore.clone(),
            cors_origins: self.cors_origins.clone(),
            store_description: self.storage.describe(),
        }
    }

    /// The issuer for a server bound to `bound`: the configured one, or — without
    /// `public_url` — one for the address actually bound (so `--listen 127.0.0.1:0` issues for
    /// the port it got).
    pub(crate) fn issuer_at(&self, bound: SocketAddr) -> anyhow::Result<IssuerConfig> {
        if self.public_url_configured {
            return Ok(self.issuer.clone());
        }
        self.issuer_settings
            .validate(&loopback_url(bound))
            .context("invalid [issuer]")
    }
}

/// `http://<addr>`, with an unspecified address (0.0.0.0) replaced by 127.0.0.1.
fn loopback_url(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    format!("http://{}", SocketAddr::new(host, addr.port()))
}

/// `CLAIMDB_PROVIDER_<NAME>_CLIENT_SECRET`: the name upper-cased, other characters than
/// letters and digits as `_`.
pub(crate) fn client_secret_var(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("CLAIMDB_PROVIDER_{name}_CLIENT_SECRET")
}

/// An environment value is read as a TOML value when it parses as one (`8`, `true`), else as a
/// plain string (`127.0.0.1:8787`, `./data`).
fn env_value(text: &str) -> toml::Value {
    format!("v = {text}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_str())
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// Regression: the default body limit was defined twice, here and in `claimdb_server`, so
    /// the two could drift apart. The HTTP settings of an empty configuration must be the
    /// server's own defaults, every one of them.
    #[test]
    fn an_empty_configuration_serves_with_the_servers_defaults() {
        let c = Config::load(None, no_env, &Overrides::default()).unwrap();
        let served = c.server_config();
        // The store's description (for the console's status page) is no HTTP setting.
        let defaults = claimdb_server::ServerConfig {
            store_description: served.store_description.clone(),
            ..Default::default()
        };
        assert_eq!(format!("{served:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn defaults_with_no_file() {
        let c = Config::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(c.max_body_bytes, claimdb_server::DEFAULT_MAX_BODY_BYTES);
        assert_eq!(
            c.connections.max_connections,
            claimdb_server::DEFAULT_MAX_CONNECTIONS
        );
        assert_eq!(
            c.connections.idle_timeout,
            claimdb_server::DEFAULT_IDLE_TIMEOUT
        );
    }

    #[test]
    fn connection_limits_from_the_file_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "header_read_timeout_ms = 2000\nidle_timeout_ms = 30000\nbody_read_timeout_ms = 9000\n\
             shutdown_timeout_ms = 0\nmax_connections = 64\n",
        )
        .unwrap();
        let env = |k: &str| (k == "CLAIMDB_MAX_CONNECTIONS").then(|| "128".to_string());
        let c = Config::load(Some(&file), env, &Overrides::default()).unwrap();
        assert_eq!(
            c.connections,
            ConnectionLimits {
                header_read_timeout: Duration::from_secs(2),
                idle_timeout: Duration::from_secs(30),
                body_read_timeout: Duration::from_secs(9),
                shutdown_timeout: Duration::ZERO,
                max_connections: 128,
            }
        );
        for (text, want) in [
            (
                "header_read_timeout_ms = 5\n",
                "header_read_timeout_ms = 5 is out of range",
            ),
            (
                "idle_timeout_ms = 0\n",
                "idle_timeout_ms = 0 is out of range",
            ),
            ("body_read_timeout_ms = 3600001\n", "body_read_timeout_ms"),
            ("shutdown_timeout_ms = 600001\n", "shutdown_timeout_ms"),
            (
                "max_connections = 0\n",
                "max_connections = 0 is out of range",
            ),
            ("max_connections = -1\n", "invalid configuration"),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = Config::load(Some(&file), no_env, &Overrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains(want), "{text}: {err:#}");
        }
    }

    #[test]
    fn file_then_environment_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("claimdb.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/a\"\nmax_body_bytes = 4096\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            "CLAIMDB_DATA_DIR" => Some("/b".to_string()),
            "CLAIMDB_MAX_BODY_BYTES" => Some("8192".to_string()),
            _ => None,
        };
        let c = Config::load(Some(&file), env, &Overrides::default()).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.data_dir, PathBuf::from("/b"));
        assert_eq!(c.max_body_bytes, 8192);
        let flags = Overrides {
            listen: Some("127.0.0.1:1".into()),
            data_dir: Some("/c".into()),
            rules: None,
        };
        let c = Config::load(Some(&file), env, &flags).unwrap();
        assert_eq!((c.listen.port(), c.data_dir), (1, PathBuf::from("/c")));
    }

    #[test]
    fn storage_and_audit_retention_keys() {
        let c = Config::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(c.audit_max_bytes, claimdb_audit::DEFAULT_MAX_BYTES);
        assert_eq!(c.audit_retention, Some(claimdb_audit::DEFAULT_MAX_AGE));
        let Storage::Sqlite {
            wal_max_bytes,
            history_retention,
            ..
        } = c.storage
        else {
            panic!("{:?}", c.storage)
        };
        assert_eq!(wal_max_bytes, claimdb_store::sqlite::DEFAULT_WAL_MAX_BYTES);
        assert_eq!(
            history_retention,
            claimdb_store::history::DEFAULT_HISTORY_RETENTION
        );
        let env = |k: &str| match k {
            "CLAIMDB_WAL_MAX_BYTES" => Some("4194304".to_string()),
            "CLAIMDB_HISTORY_RETENTION_SECS" => Some("0".to_string()),
            "CLAIMDB_AUDIT_MAX_BYTES" => Some("1048576".to_string()),
            "CLAIMDB_AUDIT_RETENTION_DAYS" => Some("0".to_string()),
            _ => None,
        };
        let c = Config::load(None, env, &Overrides::default()).unwrap();
        assert_eq!((c.audit_max_bytes, c.audit_retention), (1_048_576, None));
        assert!(matches!(
            c.storage,
            Storage::Sqlite {
                wal_max_bytes: 4_194_304,
                history_retention: std::time::Duration::ZERO,
                ..
            }
        ));
        for (key, value, want) in [
            ("CLAIMDB_WAL_MAX_BYTES", "1000", "wal_max_bytes"),
            (
                "CLAIMDB_HISTORY_RETENTION_SECS",
                "700000",
                "history_retention_secs",
            ),
            ("CLAIMDB_AUDIT_MAX_BYTES", "1000", "audit_max_bytes"),
            (
                "CLAIMDB_AUDIT_RETENTION_DAYS",
                "100000",
                "audit_retention_days",
            ),
        ] {
            let env = |k: &str| (k == key).then(|| value.to_string());
            let err = Config::load(None, env, &Overrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains(want), "{key}: {err:#}");
        }
    }

    #[test]
    fn misspelled_keys_and_environment_variables_get_a_suggestion() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "admin_keys = \"0123456789abcdef0\"\n").unwrap();
        let err = Config::load(Some(&file), no_env, &Overrides::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains("(did you mean `admin_key`?)"),
            "{err:#}"
        );
        std::fs::write(&file, "zzz = 1\n").unwrap();
        let err = Config::load(Some(&file), no_env, &Overrides::default()).unwrap_err();
        assert!(!format!("{err:#}").contains("did you mean"), "{err:#}");
        let vars = [
            "CLAIMDB_LISTEN",
            "CLAIMDB_DATADIR",
            "CLAIMDB_CONFIG",
            "CLAIMDB_PROVIDER_AUTH0_CLIENT_SECRET",
            "CLAIMDB_TEST_POSTGRES_URL",
            "CLAIMDB_WHATEVER_ELSE",
            "PATH",
        ];
        let warnings = unknown_env_vars(vars.iter().map(|v| (*v).to_owned()));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("CLAIMDB_DATADIR") && warnings[0].contains("CLAIMDB_DATA_DIR"),
            "{warnings:?}"
        );
        assert!(!warnings[1].contains("did you mean"), "{warnings:?}");
    }

    #[test]
    fn rules_come_from_the_file_or_the_database_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), no_env, &Overrides::default())
        };
        assert!(load("").unwrap().rules_in_database);
        assert!(!load("rules = \"f.rules\"\n").unwrap().rules_in_database);
        assert!(
            load("rules = \"f.rules\"\nrules_from = \"database\"\n")
                .unwrap()
                .rules_in_database
        );
        let err = load("rules_from = \"file\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("needs a rules file"), "{err:#}");
        let err = load("rules_from = \"db\"\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("\"file\" or \"database\""),
            "{err:#}"
        );
        // `serve --rules FILE` overrides the file's setting.
        let flags = Overrides {
            rules: Some("g.rules".into()),
            ..Overrides::default()
        };
        std::fs::write(&file, "").unwrap();
        let c = Config::load(Some(&file), no_env, &flags).unwrap();
        assert_eq!(c.rules.as_deref(), Some(Path::new("g.rules")));
        assert!(!c.rules_in_database);
    }

    #[test]
    fn reads_providers() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("claimdb.toml");
        std::fs::write(
            &file,
            "[[providers]]\nname = \"auth0\"\nissuer = \"https://example.eu.auth0.com/\"\n\
             jwks_uri = \"https://example.eu.auth0.com/.well-known/jwks.json\"\n\
             audience = [\"https://api.example.com\"]\nalgorithms = [\"RS256\"]\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), no_env, &Overrides::default()).unwrap();
        assert_eq!(c.providers.len(), 1);
        assert_eq!(c.providers[0].name, "auth0");
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), no_env, &Overrides::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown config key `lisen`"),
            "{err:#}"
        );
        std::fs::write(&file, "listen = \"nowhere\"\n").unwrap();
        let err = Config::load(Some(&file), no_env, &Overrides::default()).unwrap_err();
        assert!(format!("{err:#}").contains("is not IP:PORT"), "{err:#}");
        std::fs::write(&file, "listen = [\n").unwrap();
        let err = Config::load(Some(&file), no_env, &Overrides::default()).unwrap_err();
        assert!(format!("{err:#}").contains("not valid TOML"), "{err:#}");
        std::fs::write(
            &file,
            "[[providers]]\nname = \"x\"\nissuer = \"https://x.example/\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&file), no_env, &Overrides::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains("invalid [[providers]]"),
            "{err:#}"
        );
        let env = |k: &str| (k == "CLAIMDB_MAX_BODY_BYTES").then(|| "lots".to_string());
        assert!(Config::load(None, env, &Overrides::default()).is_err());
        let missing = dir.path().join("missing.toml");
        assert!(Config::load(Some(&missing), no_env, &Overrides::default()).is_err());
    }

    #[test]
    fn client_secrets_from_the_environment_and_the_issuer_at_the_bound_port() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[[providers]]\nname = \"my-idp\"\nissuer = \"https://idp.example/\"\n\
             jwks_uri = \"https://idp.example/jwks\"\naudience = \"app\"\nclient_id = \"app\"\n",
        )
        .unwrap();
        let env =
            |k: &str| (k == "CLAIMDB_PROVIDER_MY_IDP_CLIENT_SECRET").then(|| "s3cret".to_owned());
        let c = Config::load(Some(&file), env, &Overrides::default()).unwrap();
        assert_eq!(c.providers[0].client_secret.as_deref(), Some("s3cret"));
        let bound: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        assert_eq!(c.issuer_at(bound).unwrap().issuer, "http://127.0.0.1:40123");
        std::fs::write(&file, "public_url = \"https://db.example.com\"\n").unwrap();
        let c = Config::load(Some(&file), no_env, &Overrides::default()).unwrap();
        assert_eq!(c.issuer_at(bound).unwrap().issuer, "https://db.example.com");
    }

    #[test]
    fn issuer_login_and_custom_token_settings() {
        // No public_url: a dev instance issues for its loopback address.
        let c = Config::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(c.issuer.issuer, "http://127.0.0.1:8787");
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("svc.pem");
        std::fs::write(&pem, "not a key").unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "public_url = \"https://db.example.com/\"\napp_redirects = [\"https://app.example.com/\"]\n\
             [issuer]\nalgorithm = \"RS256\"\nrotate_after_days = 7\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), no_env, &Overrides::default()).unwrap();
        assert_eq!(c.issuer.issuer, "https://db.example.com");
        assert_eq!(c.app_redirects.len(), 1);
        let cases = [
            ("public_url = \"http://db.example.com\"\n", "public_url"),
            ("app_redirects = [\"//evil.example\"]\n", "app_redirects"),
            ("[issuer]\ntoken_ttl_secs = 7200\n", "[issuer]"),
            (
                "[[custom_token_signers]]\nissuer = \"svc@p.iam.gserviceaccount.com\"\npublic_key_file = \"svc.pem\"\n",
                "svc.pem",
            ),
        ];
        for (text, want) in cases {
            std::fs::write(&file, text).unwrap();
            let err = Config::load(Some(&file), no_env, &Overrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains(want), "{text}: {err:#}");
        }
    }

    #[test]
    fn cors_origins_from_the_file_or_the_environment() {
        use claimdb_server::cors::AppOrigins;
        let c = Config::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(c.cors_origins, AppOrigins::None);
        assert_eq!(c.server_config().cors_origins, AppOrigins::None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "cors_origins = [\"https://App.example.com/\", \"http://127.0.0.1:5173\", \"https://app.example.com:443\"]\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), no_env, &Overrides::default()).unwrap();
        let want = AppOrigins::List(vec![
            "https://app.example.com".into(),
            "http://127.0.0.1:5173".into(),
        ]);
        assert_eq!(c.cors_origins, want);
        assert_eq!(c.server_config().cors_origins, want);
        // The environment: comma-separated, or a TOML array; `*` alone is every origin.
        let env = |v: &'static str| move |k: &str| (k == "CLAIMDB_CORS_ORIGINS").then(|| v.into());
        let c = Config::load(
            None,
            env("https://a.example, http://localhost:3000"),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            c.cors_origins,
            AppOrigins::List(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ])
        );
        let c = Config::load(None, env("[\"https://a.example\"]"), &Overrides::default()).unwrap();
        assert_eq!(
            c.cors_origins,
            AppOrigins::List(vec!["https://a.example".into()])
        );
        let c = Config::load(None, env("*"), &Overrides::default()).unwrap();
        assert_eq!(c.cors_origins, AppOrigins::Any);
        for bad in [
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "app.example.com",
            "null",
            "ftp://app.example.com",
            "https://user@app.example.com",
            "*, https://a.example",
        ] {
            let err = Config::load(None, env(bad), &Overrides::default()).unwrap_err();
            assert!(
                format!("{err:#}").contains("cors_origins"),
                "{bad}: {err:#}"
            );
        }
    }

    #[test]
    fn query_work_bound_and_token_cache_budget() {
        let c = Config::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(c.query_max_examined, claimdb_engine::DEFAULT_MAX_EXAMINED);
        assert_eq!(c.key_cache.token_cache_bytes, 64 << 20);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "query_max_examined = 500\n[key_cache]\ntoken_cache_bytes = 1048576\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), no_env, &Overrides::default()).unwrap();
        assert_eq!(c.query_max_examined, 500);
        assert_eq!(c.key_cache.token_cache_bytes, 1 << 20);
        let env = |k: &str| (k == "CLAIMDB_QUERY_MAX_EXAMINED").then(|| "99".to_string());
        let err = Config::load(Some(&file), env, &Overrides::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains("query_max_examined = 99"),
            "{err:#}"
        );
    }
}
