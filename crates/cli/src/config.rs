//! Configuration: the TOML file, `CLAIMDB_<KEY>` environment overrides and command-line flags,
//! merged in that order of increasing precedence into one validated [`Config`].
//!
//! Unknown keys are refused rather than ignored: a misspelt security setting must never be
//! silently dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use claimdb_identity::{KeyCacheConfig, ProviderConfig, validate_providers};
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
    "storage",
    "postgres_url",
    "postgres_schema",
    "postgres_pool_size",
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
    storage: Option<String>,
    postgres_url: Option<String>,
    postgres_schema: Option<String>,
    postgres_pool_size: Option<usize>,
}

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
    /// Where documents live: `storage = "sqlite"` (in `data_dir`) or `"postgres"`.
    pub storage: Storage,
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
        validate_providers(&raw.providers).context("invalid [[providers]]")?;
        let key_cache = raw.key_cache.unwrap_or_default();
        key_cache.validate().context("invalid [key_cache]")?;
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
            providers: raw.providers,
            key_cache,
            listen,
            storage,
            data_dir,
            max_body_bytes,
            log: raw.log.unwrap_or_else(|| "info".into()),
            source: file.map(Path::to_path_buf),
        })
    }
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
}
