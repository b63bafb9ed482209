//! `claimdb serve`: opens the configured store (embedded SQLite or PostgreSQL), binds the listener, serves until SIGINT/SIGTERM,
//! then drains in-flight requests and closes the store so every acknowledged write is on disk.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use claimdb_engine::{Engine, EngineOptions, audit, compile_rules};
use claimdb_rules::Ruleset;
use claimdb_server::ServerConfig;
use claimdb_store::{RecordCondition, Store};
use tracing_subscriber::EnvFilter;

use crate::ConfigArgs;

pub fn run(args: &ConfigArgs, listen: Option<String>) -> anyhow::Result<ExitCode> {
    let config = args.load(listen)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&config.log))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    runtime()?.block_on(serve(config))
}

use crate::runtime;

async fn serve(config: crate::config::Config) -> anyhow::Result<ExitCode> {
    let store = config.storage.open().await?;
    let dyn_store: Arc<dyn Store> = store.clone();
    let (ruleset, origin) = load_rules(config.rules.as_deref())?;
    let admin_key = admin_key(&dyn_store, config.admin_key.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let identity = crate::signin::build(&config, addr, &dyn_store)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "claimdb listening on http://{addr} ({})",
            config.storage.describe()
        )?;
        match &config.rules {
            Some(path) => writeln!(out, "rules: {} (reloaded when it changes)", path.display())?,
            None => writeln!(
                out,
                "rules: none configured, so every request is denied (set `rules = \"firestore.rules\"` or PUT /v1/admin/rules)"
            )?,
        }
        if config.source.is_none() {
            writeln!(out, "{}", dev_token_hint(&identity, &config, addr))?;
        }
        if let AdminKey::Created(key) = &admin_key {
            writeln!(
                out,
                "admin key (shown only this once; claimdb keeps only its hash): {key}\n  send it as X-Claimdb-Admin-Key to use /v1/admin"
            )?;
        }
        out.flush()?;
    }
    let config_file = config
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(none)".into());
    tracing::info!(%addr, storage = %config.storage.describe(), config = %config_file, "claimdb started");
    let mut options = EngineOptions::new(ruleset, origin);
    options.verifier = Some(identity.verifier.clone());
    options.sign_in = Some(identity.sign_in.clone());
    options.explain_denials = config.explain_denials;
    options.admin_roles = config.admin_roles.clone();
    options.admin_key_sha256 = Some(admin_key.sha256());
    options.query_max_examined = config.query_max_examined;
    if config.audit {
        let dir = audit::audit_dir(&config.data_dir);
        options.audit = Some(
            audit::AuditLog::open(&dir, audit::AuditConfig::default())
                .with_context(|| format!("cannot open the audit log in {}", dir.display()))?,
        );
    }
    let engine = Arc::new(Engine::new(dyn_store, options));
    // Audit events of writes a previous run committed but may not have synced to its log.
    let trimmer = match engine.audit_log() {
        Some(log) if engine.journals_audit() => {
            audit::journal::recover(engine.store().as_ref(), log)
                .await
                .context("cannot recover the audit journal")?;
            Some(audit::journal::spawn_trimmer(
                engine.store().clone(),
                log.clone(),
                std::time::Duration::from_secs(1),
            ))
        }
        _ => None,
    };
    // Keys are fetched after the listener is up: /readyz says "not ready" until every
    // provider has keys, and a request arriving meanwhile waits for the first fetch.
    identity.spawn();
    if let Some(path) = config.rules.clone() {
        tokio::spawn(watch_rules(path, engine.clone()));
    }
    let server_config = ServerConfig {
        max_body_bytes: config.max_body_bytes,
    };
    claimdb_server::run(listener, engine.clone(), server_config, shutdown_signal())
        .await
        .context("server failed")?;
    if let Some(trimmer) = trimmer {
        trimmer.abort();
    }
    if let Some(log) = engine.audit_log()
        && let Err(e) = log.close().await
    {
        tracing::error!("closing the audit log: {e}");
    }
    store.close().await.context("closing the store")?;
    tracing::info!("claimdb stopped");
    Ok(ExitCode::SUCCESS)
}

/// The dev instance's one line on getting a token: `claimdb token mint` with the data directory
/// (and the public URL when the bound address is not the default one the CLI would assume).
fn dev_token_hint(
    identity: &crate::signin::Identity,
    config: &crate::config::Config,
    addr: std::net::SocketAddr,
) -> String {
    let iss = identity.sign_in.public_url();
    let default_iss = format!("http://{}", crate::config::DEFAULT_LISTEN);
    let env = if config.public_url_configured || iss == default_iss {
        String::new()
    } else {
        format!("CLAIMDB_PUBLIC_URL={iss} ")
    };
    format!(
        "dev token: TOKEN=$({env}claimdb token mint --uid alice --data-dir {dir}); curl -H \"Authorization: Bearer $TOKEN\" http://{addr}/v1/me",
        dir = config.data_dir.display(),
    )
}

/// Compiles the rules file, or the locked-down rules when none is configured.
fn load_rules(path: Option<&Path>) -> anyhow::Result<(Ruleset, String)> {
    let Some(path) = path else {
        return Ok((Ruleset::locked(), "default (locked)".into()));
    };
    let source = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the rules file {}", path.display()))?;
    let ruleset = compile_rules(&source).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((ruleset, path.display().to_string()))
}

/// How often the rules file is checked for changes.
const RULES_POLL: Duration = Duration::from_secs(1);

/// Reloads the rules file whenever its content changes: compiled and swapped in atomically, or
/// refused with the compile errors logged while the running rules stay.
async fn watch_rules(path: PathBuf, engine: Arc<Engine>) {
    let mut last = std::fs::read(&path).ok();
    loop {
        tokio::time::sleep(RULES_POLL).await;
        let now = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) => {
                if last.is_some() {
                    tracing::warn!(rules = %path.display(), "cannot read the rules file ({e}); the running rules stay");
                    last = None;
                }
                continue;
            }
        };
        if last.as_deref() == Some(now.as_slice()) {
            continue;
        }
        last = Some(now.clone());
        let compiled = String::from_utf8(now)
            .map_err(|_| "the file is not UTF-8".to_string())
            .and_then(|src| compile_rules(&src).map_err(|e| e.to_string()));
        match compiled {
            Ok(ruleset) => {
                engine.replace_rules(ruleset, path.display().to_string());
                tracing::info!(rules = %path.display(), "rules reloaded");
            }
            Err(e) => {
                tracing::error!(rules = %path.display(), "the changed rules were refused; the running rules stay: {e}");
            }
        }
    }
}

/// The record holding the SHA-256 of a generated admin key (hex).
const ADMIN_KEY_RECORD: (&str, &str) = ("system", "admin_key_sha256");

enum AdminKey {
    Configured([u8; 32]),
    Stored([u8; 32]),
    Created(String),
}

impl AdminKey {
    fn sha256(&self) -> [u8; 32] {
        match self {
            AdminKey::Configured(h) | AdminKey::Stored(h) => *h,
            AdminKey::Created(key) => claimdb_identity::sha256(key),
        }
    }
}

/// The configured admin key; else the stored hash of the generated one; else a new key,
/// created now, stored only as its hash and shown once.
async fn admin_key(store: &Arc<dyn Store>, configured: Option<&str>) -> anyhow::Result<AdminKey> {
    if let Some(key) = configured {
        return Ok(AdminKey::Configured(claimdb_identity::sha256(key)));
    }
    let (ns, name) = ADMIN_KEY_RECORD;
    let parse = |hex: &str| -> anyhow::Result<[u8; 32]> {
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .context("the stored admin key hash is corrupt")?;
        bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the stored admin key hash has the wrong length"))
    };
    if let Some(hex) = store.get_record(ns, name).await? {
        return Ok(AdminKey::Stored(parse(&hex)?));
    }
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let hex: String = claimdb_identity::sha256(&key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if store
        .put_record(ns, name, Some(hex), RecordCondition::Absent)
        .await?
    {
        Ok(AdminKey::Created(key))
    } else {
        // Another node created one first: use theirs.
        let hex = store
            .get_record(ns, name)
            .await?
            .context("the admin key record vanished")?;
        Ok(AdminKey::Stored(parse(&hex)?))
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        () = term => tracing::info!("SIGTERM received; shutting down"),
    }
}
