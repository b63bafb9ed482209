//! `claimdb migrate`: copies every document and system record from one store to another
//! (SQLite ⇄ PostgreSQL, or SQLite → SQLite), then verifies that the target holds exactly what
//! the source does. Stop the nodes writing to the source first: the copy is page by page, not
//! one snapshot.
//!
//! Documents are copied in path order in atomic batches ([`Store::restore`], metadata kept), so
//! an interrupted run leaves the target holding a prefix of the source: `--resume` continues
//! after the last document present there. `--rollback` instead empties the target (every
//! document and record deleted). A non-empty target is refused without one of the two, so a
//! migration never mixes into a live store by accident. Records are few and copied whole after
//! the documents (setting a record twice is harmless).
//!
//! Exit codes: 0 copied and verified, 1 verification found a difference, 2 usage or
//! operational error.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use claimdb_model::DocPath;
use claimdb_model::limits::MAX_BATCH_WRITES;
use claimdb_store::{Record, RecordCondition, Store, Write, WriteOp};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::storage::Storage;
use crate::{jsonl, runtime};

const PAGE: usize = MAX_BATCH_WRITES;

/// What `claimdb migrate` was asked to do.
pub struct Args {
    pub from: Option<String>,
    pub to: String,
    pub resume: bool,
    pub rollback: bool,
    pub max_documents: Option<u64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let to = Storage::from_spec(&args.to).context("--to")?;
    if args.rollback {
        return runtime()?.block_on(async {
            let target = to.open().await?;
            rollback(target.as_ref()).await?;
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
        let code = copy_and_verify(source.clone(), target.clone(), &args).await;
        source.close().await?;
        target.close().await?;
        code
    })
}

async fn copy_and_verify(
    source: Arc<dyn Store>,
    target: Arc<dyn Store>,
    args: &Args,
) -> anyhow::Result<ExitCode> {
    let target_empty =
        target.scan(None, 1).await?.is_empty() && target.scan_records(None, 1).await?.is_empty();
    let mut after: Option<DocPath> = None;
    if !target_empty {
        if !args.resume {
            bail!(
                "the target is not empty. To continue an interrupted migration into it, run \
                 again with --resume; to empty it (undoing an interrupted migration), run \
                 `claimdb migrate --to ... --rollback`"
            );
        }
        after = last_path(target.as_ref()).await?;
    }
    let (documents, records) = count(source.as_ref()).await?;
    let progress = ProgressBar::with_draw_target(Some(documents), ProgressDrawTarget::stderr());
    progress.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} documents ({eta} left)",
    )?);
    if let Some(last) = &after {
        let done = count_until(source.as_ref(), last).await?;
        progress.set_position(done);
        eprintln!("resuming after {last} ({done} documents already copied)");
    }
    let mut copied = 0u64;
    loop {
        let mut want = PAGE;
        if let Some(max) = args.max_documents {
            let left = max.saturating_sub(copied);
            if left == 0 {
                progress.finish_and_clear();
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
    progress.finish_and_clear();
    let mut record_after: Option<(String, String)> = None;
    loop {
        let page = source
            .scan_records(
                record_after.as_ref().map(|(n, k)| (n.as_str(), k.as_str())),
                PAGE,
            )
            .await?;
        for r in &page {
            target
                .put_record(
                    &r.namespace,
                    &r.key,
                    Some(r.value.clone()),
                    RecordCondition::Any,
                )
                .await
                .with_context(|| format!("writing record {}/{}", r.namespace, r.key))?;
        }
        match page.last() {
            Some(r) if page.len() == PAGE => {
                record_after = Some((r.namespace.clone(), r.key.clone()))
            }
            _ => break,
        }
    }
    eprintln!("copied {copied} documents and {records} records; verifying");
    match verify(source.as_ref(), target.as_ref()).await? {
        None => {
            eprintln!(
                "verified: the target holds the same {documents} documents and {records} records"
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(difference) => {
            eprintln!("claimdb: verification failed: {difference}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Documents and records in a store.
async fn count(store: &dyn Store) -> anyhow::Result<(u64, u64)> {
    let mut documents = 0u64;
    let mut after = None;
    loop {
        let page = store.scan(after.as_ref(), 1000).await?;
        documents += page.len() as u64;
        match page.last() {
            Some(d) if page.len() == 1000 => after = Some(d.path.clone()),
            _ => break,
        }
    }
    let mut records = 0u64;
    let mut after: Option<(String, String)> = None;
    loop {
        let page = store
            .scan_records(after.as_ref().map(|(n, k)| (n.as_str(), k.as_str())), 1000)
            .await?;
        records += page.len() as u64;
        match page.last() {
            Some(r) if page.len() == 1000 => after = Some((r.namespace.clone(), r.key.clone())),
            _ => break,
        }
    }
    Ok((documents, records))
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

/// Compares both stores document by document (path, data, times, version) and record by
/// record; the first difference, if any.
async fn verify(source: &dyn Store, target: &dyn Store) -> anyhow::Result<Option<String>> {
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
    let mut after: Option<(String, String)> = None;
    loop {
        let at = after.as_ref().map(|(n, k)| (n.as_str(), k.as_str()));
        let a: Vec<Record> = source.scan_records(at, 1000).await?;
        let b: Vec<Record> = target.scan_records(at, 1000).await?;
        if let Some((x, y)) = a.iter().zip(&b).find(|(x, y)| x != y) {
            return Ok(Some(format!(
                "record {}/{} in the source does not match record {}/{} in the target",
                x.namespace, x.key, y.namespace, y.key
            )));
        }
        if a.len() != b.len() {
            return Ok(Some(format!(
                "the source has {} more records than the target in this range",
                a.len() as i64 - b.len() as i64
            )));
        }
        match a.last() {
            Some(r) if a.len() == 1000 => after = Some((r.namespace.clone(), r.key.clone())),
            _ => return Ok(None),
        }
    }
}

/// Deletes every document and record of `store`.
async fn rollback(store: &dyn Store) -> anyhow::Result<()> {
    let progress = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    progress.set_style(ProgressStyle::with_template(
        "{spinner} deleted {pos} documents and records ({per_sec})",
    )?);
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
                    .collect(),
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
    progress.finish_and_clear();
    eprintln!("rolled back: the target is empty");
    Ok(())
}
