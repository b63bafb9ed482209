//! `claimdb token inspect JWT [--config FILE]`: shows a token's header and claims, which
//! configured provider its issuer selects (claimdb's own issuer included, when the data
//! directory has its keys), and whether it verifies — and if not, why, in words a newcomer can
//! act on. Exit 0 when it verifies, 1 when it does not (or no provider is configured to check
//! it), 2 on a usage or operational error.
//!
//! `claimdb token mint --uid U [--claims JSON] [--ttl 30m]`: prints a claimdb ID token signed
//! with the data directory's issuer key (created if there is none). `claimdb token
//! rotate-keys`: makes a new signing key; the old one stays published until its tokens expire.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use claimdb_identity::Verdict;
use claimdb_identity::io::{NoPersistence, SystemClock};
use claimdb_identity::{HttpFetcher, Verifier, VerifierDeps, inspect, validate_providers};
use claimdb_signin::issuer::parse_ttl;
use claimdb_signin::{Issuer, IssuerError, MintRequest};

use crate::{ConfigArgs, runtime};

pub(crate) fn inspect_command(args: &ConfigArgs, token: &str) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    let token = if token == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read standard input")?;
        text
    } else {
        token.to_string()
    };
    // The runtime outlives the issuer, which may hold the database's connections.
    let rt = runtime()?;
    let (inspection, issuer) = rt.block_on(async {
        // claimdb's own issuer joins the providers when it has keys (never created here).
        let keys = key_store(&config).await?;
        let issuer = if crate::issuer_keys::has_keys(&config, keys.as_ref()).await? {
            Some(
                crate::issuer_keys::open_issuer(&config, config.issuer.clone(), keys.as_ref())
                    .await?,
            )
        } else {
            None
        };
        // The user records, so a revoked user's token is refused here as by the server.
        let users: Option<Arc<dyn claimdb_store::Store>> = match (&keys, &config.storage) {
            (Some(k), _) => Some(k.clone()),
            (None, crate::storage::Storage::Sqlite { dir, .. })
                if dir.join(claimdb_store::sqlite::DB_FILE).exists() =>
            {
                let store = claimdb_store::SqliteStore::open_read_only(dir)
                    .with_context(|| format!("cannot read the data directory {}", dir.display()))?;
                Some(Arc::new(store))
            }
            _ => None,
        };
        let verifier = if config.providers.is_empty() && issuer.is_none() {
            None
        } else {
            let deps = VerifierDeps {
                fetcher: Arc::new(
                    HttpFetcher::new(Duration::from_millis(config.key_cache.fetch_timeout_ms))
                        .context("cannot create the HTTP client")?,
                ),
                persistence: Arc::new(NoPersistence),
                clock: Arc::new(SystemClock),
            };
            let mut providers =
                validate_providers(&config.providers).context("invalid [[providers]]")?;
            providers.extend(issuer.as_ref().map(Issuer::provider));
            let verifier = Verifier::new(providers, config.key_cache.clone(), deps)
                .context("invalid [[providers]]")?;
            // Fetch failures are reported by the inspection itself ("keys unavailable").
            verifier.start().await;
            Some(verifier)
        };
        let mut inspection = inspect(&token, verifier.as_ref(), SystemTime::now()).await;
        if let (Verdict::Verified(t), Some(store)) = (&inspection.verdict, &users) {
            let record = claimdb_engine::users::load(&**store, &t.uid)
                .await
                .with_context(|| format!("cannot read the record of user {}", t.uid))?;
            if let Some(valid_after) = record.and_then(|r| r.tokens_valid_after) {
                inspection.apply_revocation(valid_after);
            }
        }
        anyhow::Ok((inspection, issuer))
    })?;
    print!("{}", inspection.render());
    if config.providers.is_empty() && issuer.is_none() {
        println!(
            "(no providers configured: pass --config FILE with [[providers]] to check the signature)"
        );
    }
    Ok(ExitCode::from(
        u8::try_from(inspection.exit_code()).unwrap_or(1),
    ))
}

/// The database, when the issuer keys live in it (PostgreSQL).
async fn key_store(
    config: &crate::config::Config,
) -> anyhow::Result<Option<Arc<dyn claimdb_store::Store>>> {
    match config.storage {
        crate::storage::Storage::Postgres(_) => Ok(Some(config.storage.open().await?)),
        crate::storage::Storage::Sqlite { .. } => Ok(None),
    }
}

/// The issuer over the configured key storage (creating its first key if there is none).
async fn open_issuer(config: &crate::config::Config) -> anyhow::Result<Arc<Issuer>> {
    let keys = key_store(config).await?;
    crate::issuer_keys::open_issuer(config, config.issuer.clone(), keys.as_ref()).await
}

pub(crate) fn mint_command(
    args: &ConfigArgs,
    uid: &str,
    claims: Option<&str>,
    ttl: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    let claims = match claims {
        None => serde_json::Map::new(),
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => anyhow::bail!("--claims must be a JSON object, like '{{\"moderator\":true}}'"),
            Err(e) => anyhow::bail!("--claims is not valid JSON: {e}"),
        },
    };
    let ttl = ttl
        .map(parse_ttl)
        .transpose()
        .map_err(anyhow::Error::msg)
        .context("invalid --ttl")?;
    // The runtime outlives the issuer, which may hold the database's connections.
    let rt = runtime()?;
    let issuer = rt.block_on(open_issuer(&config))?;
    let request = MintRequest {
        uid: uid.to_owned(),
        claims,
        ttl,
        ..Default::default()
    };
    let minted = match issuer.mint(&request, SystemTime::now()) {
        Ok(m) => m,
        Err(IssuerError::InvalidRequest(m)) => anyhow::bail!("{m}"),
        Err(e) => return Err(e).context("cannot mint the token"),
    };
    println!("{}", minted.token);
    eprintln!(
        "claimdb: token for {uid:?} from issuer {} (key {}), valid {} s",
        config.issuer.issuer,
        minted.kid,
        minted.exp - minted.iat
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn rotate_command(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = args.load(None)?;
    // The runtime outlives the issuer, which may hold the database's connections.
    let rt = runtime()?;
    let (issuer, kid) = rt.block_on(async {
        let issuer = open_issuer(&config).await?;
        let kid = issuer
            .rotate(SystemTime::now())
            .await
            .context("cannot rotate the issuer keys")?;
        anyhow::Ok((issuer, kid))
    })?;
    println!("new signing key: {kid}");
    for k in issuer.keys().context("cannot list the issuer keys")? {
        let state = match k.unpublish_at {
            None => "active".to_owned(),
            Some(t) => format!(
                "retired, published until {} (unix seconds)",
                claimdb_identity::io::unix_secs(t)
            ),
        };
        println!("  {} {} {state}", k.kid, k.alg.name());
    }
    Ok(ExitCode::SUCCESS)
}
