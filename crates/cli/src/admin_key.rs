//! `claimdb admin-key reset`: the way back in when the generated admin key is lost. Makes a new
//! key, prints it once, then replaces the stored hash (every node reads it on each admin
//! request, so the old key stops working at once). Works on both backends; with SQLite the
//! server must be stopped, since it holds the data directory. Refused when the configuration
//! sets `admin_key` (change it there).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, bail};
use claimdb_engine::admin_key;

use crate::{ConfigArgs, runtime};

pub(crate) fn reset(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    if config.admin_key.is_some() {
        bail!(
            "admin_key is set in the configuration (or CLAIMDB_ADMIN_KEY), and it wins over a \
             generated key: change it there instead"
        );
    }
    runtime()?.block_on(async {
        let store = config
            .storage
            .open()
            .await
            .context("cannot reach the store, so the admin key cannot be reset")?;
        let (key, hash) = admin_key::generate();
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{key}")?;
            out.flush()?;
        }
        let stored = admin_key::store_hash(&*store, &hash, true)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("the new key was NOT stored, so it is not valid");
        store.close().await?;
        stored?;
        eprintln!(
            "claimdb: the new admin key is above (shown only this once; claimdb keeps only its \
             hash); the previous key no longer works. Send it as X-Claimdb-Admin-Key."
        );
        Ok(ExitCode::SUCCESS)
    })
}
