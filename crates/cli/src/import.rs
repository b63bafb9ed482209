//! `claimdb import`: loads JSON lines made by `claimdb export`. The whole input is validated
//! before anything is written, so a bad line (reported with its number) leaves the store as it
//! was; valid input is restored in atomic batches with its metadata kept.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use claimdb_model::Timestamp;
use claimdb_model::limits::MAX_BATCH_WRITES;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{ConfigArgs, jsonl, runtime};

pub fn run(args: &ConfigArgs, input: &Path) -> anyhow::Result<ExitCode> {
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
    let open = || -> anyhow::Result<Box<dyn BufRead>> {
        Ok(match &stdin_text {
            Some(text) => Box::new(std::io::Cursor::new(text.clone().into_bytes())),
            None => Box::new(BufReader::new(
                std::fs::File::open(input)
                    .with_context(|| format!("cannot open {}", input.display()))?,
            )),
        })
    };
    let now = Timestamp::now();

    // Pass 1: validate everything.
    let mut total = 0u64;
    for (i, line) in open()?.lines().enumerate() {
        let line = line.with_context(|| format!("line {}: cannot read", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        jsonl::from_line(&line, now).with_context(|| format!("line {}", i + 1))?;
        total += 1;
    }
    if total == 0 {
        bail!("{} holds no documents", input.display());
    }

    // Pass 2: restore in batches.
    let progress = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    progress.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} documents ({eta} left)",
    )?);
    runtime()?.block_on(async {
        let store = config.storage.open().await?;
        let mut batch = Vec::with_capacity(MAX_BATCH_WRITES);
        for line in open()?.lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            batch.push(jsonl::from_line(&line, now)?);
            if batch.len() == MAX_BATCH_WRITES {
                progress.inc(batch.len() as u64);
                store.restore(std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            progress.inc(batch.len() as u64);
            store.restore(batch).await?;
        }
        store.close().await?;
        anyhow::Ok(())
    })?;
    progress.finish_and_clear();
    eprintln!("imported {total} documents");
    Ok(ExitCode::SUCCESS)
}
