//! `claimdb check`: SQLite's full integrity check (`PRAGMA integrity_check`, or `quick_check`
//! with `--quick`) of the data directory's database. Exit 0 when it is sound, 1 when it is
//! damaged, 2 when it cannot be checked (no database, unreadable).
//!
//! It works while a server runs: it reads one snapshot of the database and takes no lock. That
//! snapshot holds the server's write-ahead log for as long as the check runs (the server cannot
//! interrupt another process's read), so under heavy writes the log may outgrow `wal_max_bytes`
//! until the check ends; it shrinks again afterwards.
//!
//! With `storage = "postgres"` there is no file of claimdb's to check: the command says whether
//! the database answers and leaves its integrity to PostgreSQL's own tools (amcheck).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use claimdb_store::StoreError;
use claimdb_store::sqlite::{DB_FILE, SqliteStore, Thoroughness};

use crate::ConfigArgs;
use crate::storage::Storage;

pub(crate) fn run(args: &ConfigArgs, quick: bool) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    let dir = match &config.storage {
        Storage::Sqlite { dir, .. } => dir.clone(),
        Storage::Postgres(_) => {
            crate::runtime()?.block_on(async {
                let store = config.storage.open_read_only().await?;
                store.ping().await.context("PostgreSQL does not answer")
            })?;
            println!(
                "PostgreSQL answers; claimdb keeps no file of its own to check there (use \
                 PostgreSQL's amcheck for the integrity of its tables)"
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let file = dir.join(DB_FILE);
    let (thoroughness, name) = if quick {
        (Thoroughness::Quick, "quick_check")
    } else {
        (Thoroughness::Full, "integrity_check")
    };
    let started = Instant::now();
    let problems = match SqliteStore::check(&dir, thoroughness) {
        Ok(problems) => problems,
        // Too damaged to be read at all: a negative verdict, not an operational error.
        Err(StoreError::DataLoss(message)) => vec![message],
        Err(e) => {
            return Err(e).with_context(|| format!("cannot check {}", file.display()));
        }
    };
    let size = std::fs::metadata(&file).map_or(0, |m| m.len());
    if problems.is_empty() {
        println!(
            "{}: ok ({name}, {:.1} MB, {:.1} s)",
            file.display(),
            size as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}: DAMAGED ({name} found):", file.display());
    for problem in &problems {
        println!("  {problem}");
    }
    println!(
        "Restore the data directory from a backup (a `claimdb export` file: stop the server, \
         move {} aside, then `claimdb import --data-dir {} BACKUP.jsonl`). `claimdb export` may \
         still read the documents that are intact.",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::from(1))
}
