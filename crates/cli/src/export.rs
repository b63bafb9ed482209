//! `claimdb export`: every document as JSON lines, in path order, read page by page so memory
//! stays flat however large the store is. An output file is owner-only (0600): it holds every
//! document.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{ConfigArgs, jsonl, runtime};

const PAGE: usize = 1_000;

pub fn run(args: &ConfigArgs, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    let out: Box<dyn Write> = match output {
        None => Box::new(std::io::stdout().lock()),
        Some(p) if p == Path::new("-") => Box::new(std::io::stdout().lock()),
        Some(p) => Box::new(create_private(p)?),
    };
    let mut out = BufWriter::new(out);
    let progress = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    progress.set_style(ProgressStyle::with_template(
        "{spinner} exported {pos} documents ({per_sec})",
    )?);
    let count = runtime()?.block_on(async {
        let store = config.storage.open_read_only().await?;
        let mut after = None;
        let mut count = 0u64;
        loop {
            let page = store.scan(after.as_ref(), PAGE).await?;
            for doc in &page {
                serde_json::to_writer(&mut out, &jsonl::to_line(doc))?;
                out.write_all(b"\n")?;
            }
            count += page.len() as u64;
            progress.set_position(count);
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.path.clone()),
                _ => break,
            }
        }
        store.close().await?;
        anyhow::Ok(count)
    })?;
    out.flush()?;
    progress.finish_and_clear();
    eprintln!("exported {count} documents");
    Ok(ExitCode::SUCCESS)
}

/// Creates (or truncates) `path` for the export, readable by its owner only — also when it
/// existed with a wider mode.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    #[cfg(unix)]
    if file.metadata().is_ok_and(|m| m.is_file()) {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} owner-only", path.display()))?;
    }
    Ok(file)
}
