//! The rules versions stored in the database, from the command line: `claimdb rules set FILE`,
//! `rules versions`, `rules get VERSION`, `rules rollback VERSION`. Reading works while a
//! server runs (an SQLite data directory is opened read-only); setting and rolling back write
//! the store, so with SQLite they need the server stopped (it holds the data directory) —
//! the admin API does the same while it runs. Running servers on PostgreSQL follow the new
//! version within seconds.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use claimdb_engine::rules_store::{self, StoredRules};
use claimdb_engine::{Engine, EngineOptions, RulesSource};
use claimdb_rules::Ruleset;

use crate::{ConfigArgs, runtime};

/// An engine over the configured store, for its rules operations only.
async fn engine(config: &crate::config::Config) -> anyhow::Result<Engine> {
    let store = config.storage.open().await?;
    let mut options = EngineOptions::new(Ruleset::locked(), "default (locked)");
    options.rules_source = match (&config.rules, config.rules_in_database) {
        (Some(path), false) => RulesSource::File(path.clone()),
        _ => RulesSource::Database,
    };
    Ok(Engine::new(store, options))
}

fn print_stored(action: &str, r: &StoredRules) {
    println!(
        "{action} rules version {} ({} bytes)",
        r.version,
        r.source.len()
    );
}

pub(crate) fn set(args: &ConfigArgs, file: &Path) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    let source = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the rules file {}", file.display()))?;
    runtime()?.block_on(async {
        let engine = engine(&config).await?;
        let author = format!("claimdb rules set {}", file.display());
        let result = engine.set_stored_rules(&source, &author).await;
        engine.store().close().await?;
        print_stored("stored", &result.map_err(|e| anyhow::anyhow!("{e}"))?);
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn rollback(args: &ConfigArgs, version: u64) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    runtime()?.block_on(async {
        let engine = engine(&config).await?;
        let result = engine
            .rollback_stored_rules(version, "claimdb rules rollback")
            .await;
        engine.store().close().await?;
        let stored = result.map_err(|e| anyhow::anyhow!("{e}"))?;
        print_stored(
            &format!("rolled back to version {version}: stored as"),
            &stored,
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// Opens the store for reading (an SQLite data directory without taking its lock).
async fn read_store(
    config: &crate::config::Config,
) -> anyhow::Result<Arc<dyn claimdb_store::Store>> {
    config.storage.open_read_only().await
}

pub(crate) fn list(args: &ConfigArgs, limit: usize) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    runtime()?.block_on(async {
        let store = read_store(&config).await?;
        let head = rules_store::head(&*store)
            .await
            .map_err(anyhow::Error::msg)?;
        let versions = rules_store::list(&*store, None, limit)
            .await
            .map_err(anyhow::Error::msg)?;
        store.close().await?;
        if versions.is_empty() {
            println!("no rules versions are stored");
            return Ok(ExitCode::SUCCESS);
        }
        println!("{:>8}  {:<27}  {:>7}  author", "version", "stored", "bytes");
        for r in &versions {
            let created = claimdb_model::Timestamp::from_micros(r.created_ms.saturating_mul(1000))
                .map(|t| t.to_string())
                .unwrap_or_default();
            let newest = if Some(r.version) == head {
                " (newest)"
            } else {
                ""
            };
            println!(
                "{:>8}  {created:<27}  {:>7}  {}{newest}",
                r.version,
                r.source.len(),
                r.author
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn get(args: &ConfigArgs, version: u64) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    runtime()?.block_on(async {
        let store = read_store(&config).await?;
        let found = rules_store::get(&*store, version)
            .await
            .map_err(anyhow::Error::msg)?;
        store.close().await?;
        match found {
            Some(r) => {
                print!("{}", r.source);
                Ok(ExitCode::SUCCESS)
            }
            None => anyhow::bail!("there is no rules version {version}"),
        }
    })
}
