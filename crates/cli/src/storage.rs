//! Which store a command opens: the embedded SQLite store in the data directory (the default),
//! or PostgreSQL (`storage = "postgres"`), which several nodes can share. Also the
//! `sqlite:PATH` / `postgres://…` store specifications `claimdb migrate` takes.
//!
//! A PostgreSQL URL may carry a `schema=NAME` query parameter, which claimdb takes out before
//! connecting: the PostgreSQL schema holding claimdb's tables (created if missing), so several
//! claimdb databases can live in one PostgreSQL database. The `postgres_schema` key, when set,
//! wins over it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use claimdb_store::Store;
use claimdb_store::history::{DEFAULT_HISTORY_RETENTION, MAX_HISTORY_RETENTION};
use claimdb_store::sqlite::{DEFAULT_WAL_MAX_BYTES, MIN_WAL_MAX_BYTES, SqliteOptions, SqliteStore};
use claimdb_store_postgres::{PgOptions, PostgresStore};

/// Connections one node keeps to PostgreSQL by default.
pub(crate) const DEFAULT_POSTGRES_POOL_SIZE: usize = 16;
/// How long a request waits for a free PostgreSQL connection before `resource-exhausted`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A validated store choice.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Storage {
    /// The data directory, the bound of its write-ahead log (`wal_max_bytes`) and how long
    /// replaced versions are kept (`history_retention_secs`).
    Sqlite {
        dir: PathBuf,
        wal_max_bytes: u64,
        history_retention: Duration,
    },
    Postgres(Postgres),
}

#[derive(Clone, PartialEq)]
pub(crate) struct Postgres {
    /// The URL without claimdb's own `schema` parameter.
    pub url: String,
    pub schema: Option<String>,
    pub pool_size: usize,
    /// `history_retention_secs`.
    pub history_retention: Duration,
}

impl Postgres {
    /// The URL (with its schema) for a command line shown to the operator: a password is
    /// replaced by `PASSWORD`, and the whole quoted for a shell.
    pub(crate) fn url_for_display(&self) -> String {
        let mut url = self.url.clone();
        if let Some((scheme, rest)) = url.split_once("://") {
            let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
            if let Some((userinfo, host)) = authority.rsplit_once('@')
                && let Some((user, _password)) = userinfo.split_once(':')
            {
                url = format!("{scheme}://{user}:PASSWORD@{host}/{tail}");
            }
        }
        if let Some(schema) = &self.schema {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("schema=");
            url.push_str(schema);
        }
        format!("'{}'", url.replace('\'', "'\\''"))
    }
}

// Never print the URL as it is: it may hold a password.
impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("history_retention", &self.history_retention)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Validates the storage keys of the configuration.
    pub(crate) fn from_keys(
        storage: Option<&str>,
        data_dir: PathBuf,
        postgres_url: Option<&str>,
        postgres_schema: Option<&str>,
        postgres_pool_size: Option<usize>,
        wal_max_bytes: Option<u64>,
        history_retention_secs: Option<u64>,
    ) -> anyhow::Result<Storage> {
        let wal_max_bytes = wal_max_bytes.unwrap_or(DEFAULT_WAL_MAX_BYTES);
        if wal_max_bytes < MIN_WAL_MAX_BYTES {
            bail!("wal_max_bytes = {wal_max_bytes} is too small; use at least {MIN_WAL_MAX_BYTES}");
        }
        let history_retention = match history_retention_secs {
            None => DEFAULT_HISTORY_RETENTION,
            Some(secs) if secs > MAX_HISTORY_RETENTION.as_secs() => bail!(
                "history_retention_secs = {secs} is out of range; use 0 (no reads at a past \
                 time) to {} (seven days)",
                MAX_HISTORY_RETENTION.as_secs()
            ),
            Some(secs) => Duration::from_secs(secs),
        };
        match storage.unwrap_or("sqlite") {
            "sqlite" => Ok(Storage::Sqlite {
                dir: data_dir,
                wal_max_bytes,
                history_retention,
            }),
            "postgres" => {
                let Some(url) = postgres_url else {
                    bail!(
                        "storage = \"postgres\" needs postgres_url (or CLAIMDB_POSTGRES_URL), \
                         e.g. postgres://claimdb@db.internal:5432/claimdb"
                    );
                };
                let mut pg = Postgres::parse(url)?;
                if let Some(schema) = postgres_schema {
                    pg.schema = Some(schema.to_owned());
                }
                let pool_size = postgres_pool_size.unwrap_or(DEFAULT_POSTGRES_POOL_SIZE);
                if pool_size == 0 || pool_size > 1000 {
                    bail!("postgres_pool_size = {pool_size} must be between 1 and 1000");
                }
                pg.pool_size = pool_size;
                pg.history_retention = history_retention;
                Ok(Storage::Postgres(pg))
            }
            other => bail!("storage = {other:?} is not one of \"sqlite\", \"postgres\""),
        }
    }

    /// A store specification of `claimdb migrate`: `sqlite:PATH` (a data directory) or a
    /// `postgres://` / `postgresql://` URL.
    pub(crate) fn from_spec(spec: &str) -> anyhow::Result<Storage> {
        if let Some(path) = spec.strip_prefix("sqlite:") {
            if path.is_empty() {
                bail!("`sqlite:` needs a data directory, e.g. sqlite:./claimdb-data");
            }
            return Ok(Storage::Sqlite {
                dir: PathBuf::from(path),
                wal_max_bytes: DEFAULT_WAL_MAX_BYTES,
                history_retention: DEFAULT_HISTORY_RETENTION,
            });
        }
        if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            return Ok(Storage::Postgres(Postgres::parse(spec)?));
        }
        bail!("{spec:?} is neither sqlite:PATH nor a postgres:// URL")
    }

    /// Says where the data is, without secrets.
    pub(crate) fn describe(&self) -> String {
        match self {
            Storage::Sqlite { dir, .. } => format!("data in {}", dir.display()),
            Storage::Postgres(pg) => format!(
                "data in PostgreSQL{}",
                pg.schema
                    .as_deref()
                    .map(|s| format!(", schema {s}"))
                    .unwrap_or_default()
            ),
        }
    }

    /// Opens the store (an SQLite data directory is locked against other writers meanwhile).
    pub(crate) async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        self.open_with(false).await
    }

    /// Opens the store to read it while it may be in use (`export`, a migration's source): an
    /// SQLite data directory is not locked, and writes are refused.
    pub(crate) async fn open_read_only(&self) -> anyhow::Result<Arc<dyn Store>> {
        self.open_with(true).await
    }

    async fn open_with(&self, read_only: bool) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            Storage::Sqlite {
                dir,
                wal_max_bytes,
                history_retention,
            } => Arc::new(
                if read_only {
                    SqliteStore::open_read_only(dir)
                } else {
                    SqliteStore::open_with(
                        dir,
                        SqliteOptions::default()
                            .with_wal_max_bytes(*wal_max_bytes)
                            .with_history_retention(*history_retention),
                    )
                }
                .with_context(|| format!("cannot open the data directory {}", dir.display()))?,
            ),
            Storage::Postgres(pg) => Arc::new(
                PostgresStore::connect(
                    &pg.url,
                    PgOptions {
                        pool_size: pg.pool_size,
                        acquire_timeout: ACQUIRE_TIMEOUT,
                        schema: pg.schema.clone(),
                        history_retention: pg.history_retention,
                    },
                )
                .await
                .context("cannot open the PostgreSQL store")?,
            ),
        })
    }
}

impl Postgres {
    /// Takes claimdb's `schema=NAME` parameter out of a PostgreSQL URL.
    fn parse(url: &str) -> anyhow::Result<Postgres> {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, q),
            None => (url, ""),
        };
        let mut schema = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.strip_prefix("schema=") {
                Some(name) if !name.is_empty() => schema = Some(name.to_owned()),
                Some(_) => bail!("the PostgreSQL URL has an empty schema= parameter"),
                None => rest.push(pair),
            }
        }
        let url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok(Postgres {
            url,
            schema,
            pool_size: DEFAULT_POSTGRES_POOL_SIZE,
            history_retention: DEFAULT_HISTORY_RETENTION,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_keys() {
        assert_eq!(
            Storage::from_spec("sqlite:/tmp/x").unwrap(),
            Storage::Sqlite {
                dir: "/tmp/x".into(),
                wal_max_bytes: DEFAULT_WAL_MAX_BYTES,
                history_retention: DEFAULT_HISTORY_RETENTION,
            }
        );
        let Storage::Postgres(pg) =
            Storage::from_spec("postgres://u@h/db?schema=tenant&connect_timeout=3").unwrap()
        else {
            panic!()
        };
        assert_eq!(pg.url, "postgres://u@h/db?connect_timeout=3");
        assert_eq!(pg.schema.as_deref(), Some("tenant"));
        assert!(Storage::from_spec("mysql://x").is_err());
        assert!(Storage::from_spec("sqlite:").is_err());
        let s = Storage::from_keys(
            Some("postgres"),
            "d".into(),
            Some("postgres://u:secret@h/db?schema=a"),
            Some("b"),
            Some(4),
            None,
            Some(60),
        )
        .unwrap();
        let Storage::Postgres(pg) = &s else { panic!() };
        assert_eq!((pg.schema.as_deref(), pg.pool_size), (Some("b"), 4));
        assert_eq!(pg.history_retention, Duration::from_secs(60));
        assert!(!format!("{s:?}").contains("secret"), "the password leaks");
        assert!(!s.describe().contains("secret"));
        let err = Storage::from_keys(Some("postgres"), "d".into(), None, None, None, None, None)
            .unwrap_err();
        assert!(err.to_string().contains("needs postgres_url"), "{err}");
        assert!(Storage::from_keys(Some("pg"), "d".into(), None, None, None, None, None).is_err());
        assert!(
            Storage::from_keys(
                Some("postgres"),
                "d".into(),
                Some("postgres://h"),
                None,
                Some(0),
                None,
                None
            )
            .is_err()
        );
        let err = Storage::from_keys(None, "d".into(), None, None, None, None, Some(604_801))
            .unwrap_err();
        assert!(err.to_string().contains("history_retention_secs"), "{err}");
        assert_eq!(
            Storage::from_keys(None, "d".into(), None, None, None, None, Some(0)).unwrap(),
            Storage::Sqlite {
                dir: "d".into(),
                wal_max_bytes: DEFAULT_WAL_MAX_BYTES,
                history_retention: Duration::ZERO,
            }
        );
    }
}
