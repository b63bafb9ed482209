//! `claimdb migrate`: copies every document and system record, and the issuer's signing key
//! ring, from one store to another (SQLite ⇄ PostgreSQL, or SQLite → SQLite), then verifies
//! that the target holds exactly what the source does. Stop the nodes writing to the source
//! first: the copy is page by page, not one snapshot.
//!
//! Documents are copied in path order in atomic batches ([`Store::restore`], metadata kept), so
//! an interrupted run leaves the target holding a prefix of the source: `--resume` continues
//! after the last document present there. `--rollback` instead empties the target (every
//! document and record deleted, and the key file beside an SQLite target). A non-empty target
//! is refused without one of the two, so a migration never mixes into a live store by
//! accident. Records are few and copied whole after the documents (setting a record twice is
//! harmless), then the key ring, to where the target's backend keeps it (`transfer.rs`): so
//! every unexpired token claimdb issued before the migration verifies after it.
//!
//! Exit codes: 0 copied and verified, 1 verification found a difference, 2 usage or
//! operational error.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use claimdb_model::DocPath;
use claimdb_model::limits::MAX_BATCH_WRITES;
use claimdb_store::{RecordCondition, Store, Write, WriteOp};

use crate::progress::Progress;
use crate::storage::Storage;
use crate::{jsonl, runtime, transfer};

const PAGE: usize = MAX_BATCH_WRITES;

/// What `claimdb migrate` was asked to do.
pub(crate) struct Args {
    pub from: Option<String>,
    pub to: String,
    pub resume: bool,
    pub rollback: bool,
    pub max_documents: Option<u64>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let to = Storage::from_spec(&args.to).context("--to")?;
    if args.rollback {
        return runtime()?.block_on(async {
            let target = to.open().await?;
            rollback(&to, target.as_ref()).await?;
            target.close().await?;
            Ok(ExitCode::SUCCESS)
        });
    }
    let Some(from) = args.from.as_deref() else {
        bail!("--from is required (unless --rollback)");
    };
    let from = Storage::from_spec(from).context("--from")?;
    if from == to {
        bail!("--from and --to name the same store");
    }
    runtime()?.block_on(async {
        let source = from.open_read_only().await?;
        let target = to.open().await?;
        let ends = Ends {
            from: &from,
            source: &source,
            to: &to,
            target: &target,
        };
        let code = copy_and_verify(&ends, &args).await;
        source.close().await?;
        target.close().await?;
        code
    })
}

/// Both sides of a migration.
struct Ends<'a> {
    from: &'a Storage,
    source: &'a Arc<dyn Store>,
    to: &'a Storage,
    target: &'a Arc<dyn Store>,
}

async fn copy_and_verify(ends: &Ends<'_>, args: &Args) -> anyhow::Result<ExitCode> {
    let (source, target) = (ends.source.as_ref(), ends.target.as_ref());
    let held = transfer::holdings(ends.to, target).await?;
    let mut after: Option<DocPath> = None;
    if !held.is_empty() {
        if !args.resume {
            bail!(
                "the target is not empty (it holds {}). To continue an interrupted migration \
                 into it, run again with --resume; to empty it (undoing an interrupted \
                 migration), run `claimdb migrate --to ... --rollback`",
                held.join(", ")
            );
        }
        after = last_path(target).await?;
    }
    let documents = count_documents(source).await?;
    let records = transfer::count_records(source).await?;
    let mut progress = Progress::new("copied", "documents", Some(documents));
    if let Some(last) = &after {
        let done = count_until(source, last).await?;
        progress.set_position(done);
        eprintln!("resuming after {last} ({done} documents already copied)");
    }
    let mut copied = 0u64;
    loop {
        let mut want = PAGE;
        if let Some(max) = args.max_documents {
            let left = max.saturating_sub(copied);
            if left == 0 {
                progress.finish();
                eprintln!(
                    "stopped after {copied} documents as asked (--max-documents); continue with \
                     --resume"
                );
                return Ok(ExitCode::SUCCESS);
            }
            want = want.min(usize::try_from(left).unwrap_or(PAGE));
        }
        let page = source.scan(after.as_ref(), want).await?;
        let Some(last) = page.last().map(|d| d.path.clone()) else {
            break;
        };
        let n = page.len();
        target
            .restore(page)
            .await
            .with_context(|| format!("writing the documents up to {last} to the target"))?;
        copied += n as u64;
        progress.inc(n as u64);
        after = Some(last);
        if n < want {
            break;
        }
    }
    progress.finish();
    transfer::copy_records(source, target).await?;
    let key_ring = transfer::load_key_ring(ends.from, ends.source).await?;
    if let Some(text) = &key_ring {
        transfer::save_key_ring(ends.to, ends.target, text.clone()).await?;
    }
    eprintln!(
        "copied {copied} documents, {records} records and {}; verifying",
        if key_ring.is_some() {
            "the signing key ring"
        } else {
            "no signing key ring (the source has none)"
        }
    );
    match verify(ends).await? {
        None => {
            eprintln!(
                "verified: the target holds the same {documents} documents and {records} \
                 records{}",
                if key_ring.is_some() {
                    ", and the same signing key ring"
                } else {
                    ""
                }
            );
            if let (Some(_), Storage::Sqlite { dir, .. }) = (&key_ring, ends.to) {
                eprintln!(
                    "the signing keys are in {} (readable by its owner only)",
                    crate::issuer_keys::key_file(dir).display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(difference) => {
            eprintln!("claimdb: verification failed: {difference}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Documents in a store.
async fn count_documents(store: &dyn Store) -> anyhow::Result<u64> {
    let mut documents = 0u64;
    let mut after = None;
    loop {
        let page = store.scan(after.as_ref(), 1000).await?;
        documents += page.len() as u64;
        match page.last() {
            Some(d) if page.len() == 1000 => after = Some(d.path.clone()),
            _ => return Ok(documents),
        }
    }
}

/// Documents of `store` up to and including `last`.
async fn count_until(store: &dyn Store, last: &DocPath) -> anyhow::Result<u64> {
    let mut n = 0u64;
    let mut after = None;
    let bound = last.sort_key();
    loop {
        let page = store.scan(after.as_ref(), 1000).await?;
        n += page.iter().filter(|d| d.path.sort_key() <= bound).count() as u64;
        match page.last() {
            Some(d) if page.len() == 1000 && d.path.sort_key() < bound => {
                after = Some(d.path.clone())
            }
            _ => return Ok(n),
        }
    }
}

/// The last document path of a store.
async fn last_path(store: &dyn Store) -> anyhow::Result<Option<DocPath>> {
    let mut last = None;
    loop {
        let page = store.scan(last.as_ref(), 1000).await?;
        let full = page.len() == 1000;
        if let Some(d) = page.last() {
            last = Some(d.path.clone());
        }
        if !full {
            return Ok(last);
        }
    }
}

/// Compares both stores document by document (path, data, times, version), record by record
/// and their key rings; the first difference, if any.
async fn verify(ends: &Ends<'_>) -> anyhow::Result<Option<String>> {
    let (source, target) = (ends.source.as_ref(), ends.target.as_ref());
    let mut after: Option<DocPath> = None;
    loop {
        let a = source.scan(after.as_ref(), 1000).await?;
        let b = target.scan(after.as_ref(), 1000).await?;
        for (x, y) in a.iter().zip(&b) {
            if x.path != y.path {
                let first = if x.path.sort_key() < y.path.sort_key() {
                    format!("{} is missing from the target", x.path)
                } else {
                    format!("{} is in the target but not in the source", y.path)
                };
                return Ok(Some(first));
            }
            if jsonl::to_line(x) != jsonl::to_line(y) {
                return Ok(Some(format!(
                    "{} differs between source and target",
                    x.path
                )));
            }
        }
        if a.len() != b.len() {
            let extra = if a.len() > b.len() {
                format!("{} is missing from the target", a[b.len()].path)
            } else {
                format!("{} is in the target but not in the source", b[a.len()].path)
            };
            return Ok(Some(extra));
        }
        match a.last() {
            Some(d) if a.len() == 1000 => after = Some(d.path.clone()),
            _ => break,
        }
    }
    let (mut a, mut b) = (
        transfer::Records::new(source),
        transfer::Records::new(target),
    );
    loop {
        match (a.next().await?, b.next().await?) {
            (None, None) => break,
            (Some(x), None) => {
                return Ok(Some(format!(
                    "record {}/{} is missing from the target",
                    x.namespace, x.key
                )));
            }
            (None, Some(y)) => {
                return Ok(Some(format!(
                    "record {}/{} is in the target but not in the source",
                    y.namespace, y.key
                )));
            }
            (Some(x), Some(y)) if x != y => {
                return Ok(Some(format!(
                    "record {}/{} in the source does not match record {}/{} in the target",
                    x.namespace, x.key, y.namespace, y.key
                )));
            }
            _ => {}
        }
    }
    let source_keys = transfer::load_key_ring(ends.from, ends.source).await?;
    let target_keys = transfer::load_key_ring(ends.to, ends.target).await?;
    if source_keys != target_keys {
        return Ok(Some(
            "the signing key rings of source and target differ".into(),
        ));
    }
    Ok(None)
}

/// Deletes every document and record of `store`, and the key file beside an SQLite store.
async fn rollback(storage: &Storage, store: &dyn Store) -> anyhow::Result<()> {
    let mut progress = Progress::new("deleted", "documents and records", None);
    loop {
        let page = store.scan(None, PAGE).await?;
        if page.is_empty() {
            break;
        }
        let n = page.len();
        store
            .commit(
                page.into_iter()
                    .map(|d| Write::new(d.path, WriteOp::Delete))
                    .collect::<Vec<_>>()
                    .into(),
            )
            .await
            .context("deleting documents from the target")?;
        progress.inc(n as u64);
    }
    loop {
        let page = store.scan_records(None, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            store
                .put_record(&r.namespace, &r.key, None, RecordCondition::Any)
                .await
                .context("deleting records from the target")?;
        }
        progress.inc(page.len() as u64);
    }
    progress.finish();
    transfer::remove_key_ring(storage)?;
    eprintln!("rolled back: the target is empty");
    Ok(())
}
