//! `claimdb token inspect JWT [--config FILE]`: shows a token's header and claims, which
//! configured provider its issuer selects, and whether it verifies — and if not, why, in words
//! a newcomer can act on. Exit 0 when it verifies, 1 when it does not (or no provider is
//! configured to check it), 2 on a usage or operational error.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use claimdb_identity::io::{NoPersistence, NoRevocation, SystemClock};
use claimdb_identity::{HttpFetcher, Verifier, VerifierDeps, inspect};

use crate::{ConfigArgs, runtime};

pub fn inspect_command(args: &ConfigArgs, token: &str) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    let token = if token == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read standard input")?;
        text
    } else {
        token.to_string()
    };
    let inspection = runtime()?.block_on(async {
        let verifier = if config.providers.is_empty() {
            None
        } else {
            let deps = VerifierDeps {
                fetcher: Arc::new(
                    HttpFetcher::new(Duration::from_millis(config.key_cache.fetch_timeout_ms))
                        .context("cannot create the HTTP client")?,
                ),
                persistence: Arc::new(NoPersistence),
                revocation: Arc::new(NoRevocation),
                clock: Arc::new(SystemClock),
            };
            let verifier =
                Verifier::from_configs(&config.providers, config.key_cache.clone(), deps)
                    .context("invalid [[providers]]")?;
            // Fetch failures are reported by the inspection itself ("keys unavailable").
            verifier.start().await;
            Some(verifier)
        };
        anyhow::Ok(inspect(&token, verifier.as_ref(), SystemTime::now()).await)
    })?;
    print!("{}", inspection.render());
    if config.providers.is_empty() {
        println!(
            "(no providers configured: pass --config FILE with [[providers]] to check the signature)"
        );
    }
    Ok(ExitCode::from(
        u8::try_from(inspection.exit_code()).unwrap_or(1),
    ))
}
