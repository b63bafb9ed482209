//! `claimdb export`: a complete backup as JSON lines (the format is in `jsonl.rs`): the
//! issuer's key ring, every system record and every document with its metadata, read page by
//! page so memory stays flat however large the store is. Safe while the server runs (an SQLite
//! store is read without its lock), though not one snapshot: what is written meanwhile may or
//! may not be in it.
//!
//! The backup holds the private signing keys and the admin key's hash. `-o FILE` is written to
//! a temporary file created 0600 beside FILE, synced, then renamed over it: the backup is never
//! readable by others (whatever the mode of a file it replaces), and an earlier backup at FILE
//! is replaced only by a complete new one.
//!
//! Not in a backup: the audit log (`<data_dir>/audit`, and the store's audit journal of lines
//! not yet moved there) — a record of past decisions, not state to restore.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use claimdb_model::Timestamp;

use crate::progress::Progress;
use crate::storage::Storage;
use crate::{ConfigArgs, jsonl, runtime, transfer};

pub(crate) fn run(args: &ConfigArgs, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    let mut sink = Sink::open(output)?;
    let end = runtime()?.block_on(async {
        let store = config.storage.open_read_only().await?;
        let mut out = BufWriter::new(sink.writer());
        let mut line = |value: serde_json::Value| -> anyhow::Result<()> {
            serde_json::to_writer(&mut out, &value)?;
            out.write_all(b"\n")?;
            Ok(())
        };
        line(jsonl::header_line(
            &config.storage.describe(),
            Timestamp::now(),
        ))?;
        let mut end = jsonl::End::default();
        let mut key_ring = transfer::load_key_ring(&config.storage, &store).await?;
        if key_ring.is_none() && matches!(config.storage, Storage::Postgres(_)) {
            // A key ring in the data directory that a node would adopt into the (keyless)
            // database on its next start.
            let local = Storage::Sqlite {
                dir: config.data_dir.clone(),
                wal_max_bytes: claimdb_store::sqlite::DEFAULT_WAL_MAX_BYTES,
                history_retention: claimdb_store::history::DEFAULT_HISTORY_RETENTION,
            };
            key_ring = transfer::load_key_ring(&local, &store).await?;
        }
        if let Some(text) = &key_ring {
            line(jsonl::key_ring_line(text))?;
            end.key_ring = true;
        }
        let mut progress = Progress::new("exported", "records and documents", None);
        let mut records = transfer::Records::new(store.as_ref());
        while let Some(record) = records.next().await? {
            line(jsonl::record_line(&record))?;
            end.records += 1;
            progress.inc(1);
        }
        let mut after = None;
        loop {
            let page = store.scan(after.as_ref(), transfer::PAGE).await?;
            for doc in &page {
                line(jsonl::to_line(doc))?;
            }
            end.documents += page.len() as u64;
            progress.inc(page.len() as u64);
            match page.last() {
                Some(last) if page.len() == transfer::PAGE => after = Some(last.path.clone()),
                _ => break,
            }
        }
        line(jsonl::end_line(&end))?;
        progress.finish();
        out.flush()?;
        drop(out);
        store.close().await?;
        anyhow::Ok(end)
    })?;
    let written = sink.finish()?;
    eprintln!(
        "claimdb: exported {}{} records and {} documents{written}",
        if end.key_ring {
            "the signing key ring, "
        } else {
            "no signing key ring, "
        },
        end.records,
        end.documents
    );
    if end.key_ring || end.records > 0 {
        eprintln!(
            "claimdb: the backup holds the issuer's private signing keys and the admin key's hash: \
             keep it as private as the data directory{}",
            if output.is_some_and(|p| p != Path::new("-")) {
                " (the file is readable by its owner only)"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the backup goes.
enum Sink {
    Stdout,
    /// A temporary file beside `path`, renamed over it once complete.
    File {
        tmp: tempfile::NamedTempFile,
        path: PathBuf,
    },
    /// An existing path that is not a regular file (a FIFO, `/dev/stdout`): written directly.
    Special(std::fs::File),
}

impl Sink {
    fn open(output: Option<&Path>) -> anyhow::Result<Sink> {
        let path = match output {
            None => return Ok(Sink::Stdout),
            Some(p) if p == Path::new("-") => return Ok(Sink::Stdout),
            Some(p) => p,
        };
        if let Ok(meta) = std::fs::metadata(path)
            && !meta.is_file()
        {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            return Ok(Sink::Special(file));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // Created 0600 (tempfile's default on Unix).
        let tmp = tempfile::Builder::new()
            .prefix(".claimdb-export-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        Ok(Sink::File {
            tmp,
            path: path.to_path_buf(),
        })
    }

    fn writer(&mut self) -> Box<dyn Write + '_> {
        match self {
            Sink::Stdout => Box::new(std::io::stdout().lock()),
            Sink::File { tmp, .. } => Box::new(tmp.as_file_mut()),
            Sink::Special(file) => Box::new(file),
        }
    }

    /// Makes the backup durable and puts it in place; says where it went.
    fn finish(self) -> anyhow::Result<String> {
        match self {
            Sink::Stdout => Ok(String::new()),
            Sink::Special(_) => Ok(String::new()),
            Sink::File { tmp, path } => {
                tmp.as_file()
                    .sync_all()
                    .context("cannot sync the backup file")?;
                tmp.persist(&path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                    && let Ok(d) = std::fs::File::open(dir)
                {
                    let _ = d.sync_all();
                }
                Ok(format!(" to {}", path.display()))
            }
        }
    }
}
