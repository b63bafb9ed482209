//! `claimdb import`: restores a backup made by `claimdb export` (format: `jsonl.rs`) exactly —
//! documents with their metadata, every system record, and the issuer's key ring into the place
//! the target's backend keeps it (`<data_dir>/issuer/keys.json`, 0600 in a 0700 directory,
//! beside an SQLite store; the database's records with PostgreSQL), so tokens signed before the
//! backup still verify, revoked users stay revoked and the admin key still works.
//!
//! The whole input is checked first, so a bad line (reported with its number) or a backup cut
//! short (its end line missing or its counts wrong) leaves the store as it was. A target that
//! already holds anything is refused unless `--merge` asks to mix the backup into it (documents
//! and records replace those at the same paths and keys; a key ring already there is kept).
//! Version 1 files (document lines only, no header) are still read, with a warning that they
//! restore documents only.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, bail};
use claimdb_model::Timestamp;
use claimdb_model::limits::MAX_BATCH_WRITES;
use claimdb_signin::{Issuer, KeyStorage, MemoryKeyStorage};
use claimdb_store::Store;

use crate::config::Config;
use crate::jsonl::{self, End, Entry};
use crate::progress::Progress;
use crate::{ConfigArgs, runtime, transfer};

pub(crate) fn run(args: &ConfigArgs, input: &Path, merge: bool) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    // Standard input cannot be read twice, so it is buffered; files are streamed twice.
    let stdin_text = if input == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        Some(text)
    } else {
        None
    };
    let open = || -> anyhow::Result<Lines> {
        let reader: Box<dyn BufRead> = match &stdin_text {
            Some(text) => Box::new(std::io::Cursor::new(text.clone().into_bytes())),
            None => Box::new(BufReader::new(
                std::fs::File::open(input)
                    .with_context(|| format!("cannot open {}", input.display()))?,
            )),
        };
        Ok(Lines::new(reader))
    };
    let now = Timestamp::now();
    let name = input.display().to_string();

    // Pass 1: check everything.
    let contents = check(open()?, now, &config)?;
    if contents.version == 1 && contents.end.documents == 0 {
        bail!("{name} holds no documents (and no backup header)");
    }
    if contents.version == 1 {
        eprintln!(
            "claimdb: warning: {name} is a version 1 backup (document lines, no header): users, \
             custom claims, revocations, stored rules, the signing keys and the admin key are \
             not in it, so only documents are restored"
        );
    }

    // Pass 2: restore.
    let end = contents.end;
    runtime()?.block_on(async {
        let store = config.storage.open().await?;
        let held = transfer::holdings(&config.storage, store.as_ref()).await?;
        if !held.is_empty() && !merge {
            bail!(
                "the target ({}) is not empty: it holds {}. `claimdb import` restores into an \
                 empty store; use a new data directory or PostgreSQL schema, empty this one \
                 (`claimdb migrate --to ... --rollback`), or pass --merge to mix the backup \
                 into it",
                config.storage.describe(),
                held.join(", ")
            );
        }
        let keep_target_keys = merge
            && end.key_ring
            && transfer::load_key_ring(&config.storage, &store)
                .await?
                .is_some();
        let mut progress = Progress::new(
            "imported",
            "records and documents",
            Some(end.records + end.documents),
        );
        let mut batch = Vec::with_capacity(MAX_BATCH_WRITES);
        let mut lines = open()?;
        if contents.version > 1 {
            lines.next_line()?; // the header
        }
        while let Some((_, line)) = lines.next_line()? {
            let entry = if contents.version == 1 {
                Entry::Document(jsonl::from_line(&line, now)?)
            } else {
                jsonl::parse_entry(&line, now)?
            };
            match entry {
                Entry::Document(doc) => {
                    batch.push(doc);
                    if batch.len() == MAX_BATCH_WRITES {
                        restore(store.as_ref(), &mut batch, &mut progress).await?;
                    }
                }
                Entry::Record(record) => {
                    transfer::put_record(store.as_ref(), &record).await?;
                    progress.inc(1);
                }
                Entry::KeyRing(_) if keep_target_keys => {
                    eprintln!(
                        "claimdb: warning: the target has a signing key ring of its own, which \
                         is kept (--merge): tokens signed with the backup's keys will not verify"
                    );
                }
                Entry::KeyRing(text) => {
                    transfer::save_key_ring(&config.storage, &store, text).await?;
                }
                Entry::End(_) => {}
            }
        }
        restore(store.as_ref(), &mut batch, &mut progress).await?;
        progress.finish();
        store.close().await?;
        anyhow::Ok(())
    })?;
    eprintln!(
        "claimdb: imported {}{} records and {} documents into {}",
        if end.key_ring {
            "the signing key ring, "
        } else {
            ""
        },
        end.records,
        end.documents,
        config.storage.describe()
    );
    Ok(ExitCode::SUCCESS)
}

async fn restore(
    store: &dyn Store,
    batch: &mut Vec<claimdb_store::Document>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let n = batch.len() as u64;
    store.restore(std::mem::take(batch)).await?;
    progress.inc(n);
    Ok(())
}

/// What pass 1 found.
struct Contents {
    version: u64,
    end: End,
}

/// Checks every line; for version 2, also that the file is complete (its end line is last and
/// its counts are right) and that its key ring loads.
fn check(mut lines: Lines, now: Timestamp, config: &Config) -> anyhow::Result<Contents> {
    let Some((first_number, first)) = lines.next_line()? else {
        return Ok(Contents {
            version: 1,
            end: End::default(),
        });
    };
    let Some(version) =
        jsonl::parse_header(&first).with_context(|| format!("line {first_number}"))?
    else {
        // Version 1: document lines.
        let mut end = End::default();
        let mut line = Some((first_number, first));
        while let Some((n, text)) = line {
            jsonl::from_line(&text, now).with_context(|| format!("line {n}"))?;
            end.documents += 1;
            line = lines.next_line()?;
        }
        return Ok(Contents { version: 1, end });
    };
    let mut seen = End::default();
    let mut declared = None;
    while let Some((n, text)) = lines.next_line()? {
        let at = || format!("line {n}");
        if declared.is_some() {
            bail!("line {n}: nothing may follow the end line");
        }
        match jsonl::parse_entry(&text, now).with_context(at)? {
            Entry::Document(_) => seen.documents += 1,
            Entry::Record(r) if !transfer::carried(&r) => bail!(
                "line {n}: records of namespace {:?} are where PostgreSQL keeps the key ring; a \
                 backup carries the key ring as its own \"key_ring\" line",
                r.namespace
            ),
            Entry::Record(_) => seen.records += 1,
            Entry::KeyRing(_) if seen.key_ring => bail!("line {n}: a second key ring"),
            Entry::KeyRing(text) => {
                check_key_ring(&text, config).with_context(at)?;
                seen.key_ring = true;
            }
            Entry::End(end) => declared = Some(end),
        }
    }
    let Some(declared) = declared else {
        bail!(
            "the backup has no end line: it was cut short (an export that did not finish, or a \
             truncated copy), so it is not restored"
        );
    };
    if declared != seen {
        bail!(
            "the backup's end line counts {} documents, {} records and {} key ring, but the file \
             holds {}, {} and {}: it is damaged, so it is not restored",
            declared.documents,
            declared.records,
            u8::from(declared.key_ring),
            seen.documents,
            seen.records,
            u8::from(seen.key_ring)
        );
    }
    Ok(Contents {
        version,
        end: declared,
    })
}

/// Loads a key ring the way the server will (every key parsed, its id checked), in memory.
fn check_key_ring(text: &str, config: &Config) -> anyhow::Result<()> {
    let storage = Arc::new(MemoryKeyStorage::default());
    let content = text.as_bytes().to_vec();
    runtime()?.block_on(async {
        storage
            .update(&mut |_| Ok(Some(content.clone())))
            .await
            .context("the key ring cannot be read")?;
        Issuer::open(config.issuer.clone(), storage, SystemTime::now())
            .await
            .context("the key ring does not load")?;
        anyhow::Ok(())
    })
}

/// The non-empty lines of the input with their numbers.
struct Lines {
    reader: Box<dyn BufRead>,
    number: usize,
}

impl Lines {
    fn new(reader: Box<dyn BufRead>) -> Lines {
        Lines { reader, number: 0 }
    }

    fn next_line(&mut self) -> anyhow::Result<Option<(usize, String)>> {
        loop {
            let mut line = String::new();
            self.number += 1;
            let n = self
                .reader
                .read_line(&mut line)
                .with_context(|| format!("line {}: cannot read", self.number))?;
            if n == 0 {
                return Ok(None);
            }
            if !line.trim().is_empty() {
                return Ok(Some((self.number, line)));
            }
        }
    }
}
