//! Configuration: the TOML file, `CLAIMDB_<KEY>` environment overrides and command-line flags,
//! merged in that order of increasing precedence into one validated [`Config`].
//!
//! Unknown keys are refused rather than ignored: a misspelt security setting must never be
//! silently dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use claimdb_identity::{
    CustomTokenSignerConfig, IssuerConfig, IssuerSettings, KeyCacheConfig, ProviderConfig,
    RedirectPolicy, validate_providers,
};
use serde::Deserialize;

use crate::storage::Storage;

/// Default address: loopback only, so a fresh dev instance is never exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
pub const DEFAULT_DATA_DIR: &str = "./claimdb-data";
/// Largest request body accepted, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Every top-level key the file may hold; each is overridable as `CLAIMDB_<KEY>`.
const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "max_body_bytes",
    "log",
    "providers",
    "key_cache",
    "rules",
    "audit",
    "admin_key",
    "admin_roles",
    "explain_denials",
    "public_url",
    "app_redirects",
    "issuer",
    "custom_token_signers",
    "storage",
    "postgres_url",
    "postgres_schema",
    "postgres_pool_size",
    "query_max_examined",
];

/// The file's keys as written, before defaults and validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    log: Option<String>,
    #[serde(default)]
    providers: Vec<ProviderConfig>,
    key_cache: Option<KeyCacheConfig>,
    rules: Option<PathBuf>,
    audit: Option<bool>,
    admin_key: Option<String>,
    #[serde(default)]
    admin_roles: Vec<String>,
    explain_denials: Option<bool>,
    public_url: Option<String>,
    #[serde(default)]
    app_redirects: Vec<String>,
    issuer: Option<IssuerSettings>,
    #[serde(default)]
    custom_token_signers: Vec<CustomTokenSignerConfig>,
    storage: Option<String>,
    postgres_url: Option<String>,
    postgres_schema: Option<String>,
    postgres_pool_size: Option<usize>,
    query_max_examined: Option<usize>,
}

/// The smallest work bound a query page may be given: below it, ordinary queries would end
/// most pages early.
const MIN_QUERY_MAX_EXAMINED: usize = 100;

/// Overrides given as command-line flags.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    #[allow(
        dead_code,
        reason = "the data directory stays part of the configuration with PostgreSQL storage; \
                  commands read it through `storage` today"
    )]
    pub data_dir: PathBuf,
    pub max_body_bytes: usize,
    /// A `tracing` filter such as `info` or `claimdb=debug,info`.
    pub log: String,
    /// Identity providers whose tokens are accepted (`[[providers]]`), validated.
    pub providers: Vec<ProviderConfig>,
    /// JWKS and verified-token cache behaviour (`[key_cache]`).
    pub key_cache: KeyCacheConfig,
    /// The Firestore rules file (hot-reloaded); `None`: locked-down rules (deny everything).
    pub rules: Option<PathBuf>,
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
    /// Backends allowed to mint custom tokens (`[[custom_token_signers]]`); relative
    /// `public_key_file`s are resolved against the config file's directory.
    pub custom_token_signers: Vec<CustomTokenSignerConfig>,
    /// Where documents live: `storage = "sqlite"` (in `data_dir`) or `"postgres"`.
    pub storage: Storage,
    /// Documents one page of a query may examine before it ends early with a continuation
    /// token (`query_max_examined`).
    pub query_max_examined: usize,
    /// The file this came from, if any.
    pub source: Option<PathBuf>,
}

impl Config {
    /// Loads `file` (if given), applies the environment `env`, then `overrides`.
    pub fn load(
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
                "unknown config key `{unknown}`{}; known keys: {}",
                file.map(|p| format!(" in {}", p.display()))
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
        let listen_text = overrides
            .listen
            .clone()
            .or(raw.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text.parse::<SocketAddr>().with_context(|| {
            format!("listen address {listen_text:?} is not IP:PORT (for example 127.0.0.1:8787)")
        })?;
        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            bail!("max_body_bytes = {max_body_bytes} is too small; use at least 1024");
        }
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
        )?;
        Ok(Config {
            providers,
            key_cache,
            listen,
            storage,
            data_dir,
            max_body_bytes,
            log: raw.log.unwrap_or_else(|| "info".into()),
            rules: raw.rules,
            audit: raw.audit.unwrap_or(true),
            admin_key: raw.admin_key,
            admin_roles: raw.admin_roles,
            explain_denials: raw.explain_denials.unwrap_or(file.is_none()),
            source: file.map(Path::to_path_buf),
            issuer,
            public_url_configured,
            issuer_settings,
            app_redirects: raw.app_redirects,
            custom_token_signers,
            query_max_examined,
        })
    }
}

impl Config {
    /// The issuer for a server bound to `bound`: the configured one, or — without
    /// `public_url` — one for the address actually bound (so `--listen 127.0.0.1:0` issues for
    /// the port it got).
    pub fn issuer_at(&self, bound: SocketAddr) -> anyhow::Result<IssuerConfig> {
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
pub fn client_secret_var(name: &str) -> String {
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

    #[test]
    fn defaults_with_no_file() {
        let c = Config::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
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
        };
        let c = Config::load(Some(&file), env, &flags).unwrap();
        assert_eq!((c.listen.port(), c.data_dir), (1, PathBuf::from("/c")));
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
