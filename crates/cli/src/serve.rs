//! `claimdb serve`: opens the configured store (embedded SQLite or PostgreSQL), binds the listener, serves until SIGINT/SIGTERM,
//! then drains in-flight requests and closes the store so every acknowledged write is on disk.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use claimdb_audit as audit;
use claimdb_engine::{Engine, EngineOptions, RulesSource, admin_key, compile_rules};
use claimdb_rules::Ruleset;
use claimdb_server::ServerConfig;
use claimdb_store::Store;
use tracing_subscriber::EnvFilter;

use crate::ConfigArgs;

pub(crate) fn run(
    args: &ConfigArgs,
    listen: Option<String>,
    rules: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let config = args.load_with(crate::config::Overrides {
        listen,
        rules,
        ..Default::default()
    })?;
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
    if config.emulator {
        crate::emulator::refuse_unsafe(
            config.listen,
            config.providers.len(),
            matches!(config.storage, crate::storage::Storage::Postgres(_)),
            config.emulator_force,
        )?;
    }
    let store = config.storage.open().await?;
    let dyn_store: Arc<dyn Store> = store.clone();
    // A rules file in force is compiled before anything else can fail on it.
    let (ruleset, origin) = match (&config.rules, config.rules_in_database) {
        (Some(path), false) => load_rules(path)?,
        _ => (Ruleset::locked(), "default (locked)".to_owned()),
    };
    // Bind before the admin key: a key is created only by a server that can show it.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let identity = crate::signin::build(&config, addr, &dyn_store).await?;
    // Emulator mode: the other projects start with the rules this one starts with, each in
    // its own store in a temporary directory (removed when `emulator_dir` drops).
    let emulator_dir = if config.emulator {
        Some(
            tempfile::Builder::new()
                .prefix("claimdb-emulator-")
                .tempdir()
                .context("cannot make a temporary directory for the emulator's projects")?,
        )
    } else {
        None
    };
    let emulator = emulator_dir.as_ref().map(|dir| {
        Arc::new(claimdb_server::emulator::Emulator::new(
            crate::emulator::open_projects(
                dir.path().to_path_buf(),
                ruleset.clone(),
                origin.clone(),
            ),
        ))
    });
    let mut options = EngineOptions::new(ruleset, origin);
    options.emulator = config.emulator;
    options.rules_source = match (&config.rules, config.rules_in_database) {
        (Some(path), false) => RulesSource::File(path.clone()),
        _ => RulesSource::Database,
    };
    options.verifier = Some(identity.verifier.clone());
    options.sign_in = Some(identity.sign_in.clone() as Arc<dyn claimdb_engine::SignInHooks>);
    options.explain_denials = config.explain_denials;
    options.admin_roles = config.admin_roles.clone();
    options.admin_key_sha256 = config
        .admin_key
        .as_deref()
        .map(claimdb_engine::admin_key::sha256);
    options.admin_key_stored = config.admin_key.is_none();
    options.query_max_examined = config.query_max_examined;
    if config.audit {
        let dir = audit::audit_dir(&config.data_dir);
        let audit_config = audit::AuditConfig {
            max_bytes: config.audit_max_bytes,
            max_age: config.audit_retention,
            ..audit::AuditConfig::default()
        };
        options.audit = Some(
            audit::AuditLog::open(&dir, audit_config)
                .with_context(|| format!("cannot open the audit log in {}", dir.display()))?,
        );
    }
    // Every file of the data directory exists now: say which ones others can read.
    crate::permissions::warn_if_open(&config.data_dir);
    let engine = Arc::new(Engine::new(dyn_store.clone(), options));
    let rules_line = rules_banner(&config, &engine).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "claimdb listening on http://{addr} ({})",
            config.storage.describe()
        )?;
        writeln!(out, "{rules_line}")?;
        if config.emulator {
            for line in crate::emulator::banner_lines() {
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
    }
    if config.admin_key.is_none() {
        create_admin_key_if_none(&dyn_store).await?;
    }
    if config.source.is_none() {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", dev_token_hint(&identity, &config, addr))?;
        out.flush()?;
    }
    let config_file = config
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(none)".into());
    tracing::info!(%addr, storage = %config.storage.describe(), config = %config_file, "claimdb started");
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
    match engine.rules_source() {
        RulesSource::File(path) => {
            tokio::spawn(watch_rules(path.clone(), engine.clone()));
        }
        RulesSource::Database => {
            engine.spawn_rules_follower(RULES_POLL);
        }
    }
    let server_config = ServerConfig {
        max_connections: crate::nofile::prepare(config.connections.max_connections),
        ..config.server_config()
    };
    let state = claimdb_server::AppState::new(engine.clone(), server_config)
        .with_sign_in(Some(identity.sign_in.clone()))
        .with_emulator(emulator.clone());
    claimdb_server::serve(listener, state, shutdown_signal())
        .await
        .context("server failed")?;
    if let Some(emulator) = &emulator {
        crate::emulator::close_projects(emulator).await;
    }
    drop(emulator_dir);
    if let Some(trimmer) = trimmer {
        trimmer.abort();
        // The log has every event now: empty the journal, or the next start appends the last
        // second's lines of writes to the log once more.
        if let Some(log) = engine.audit_log()
            && let Err(e) = audit::journal::trim_once(engine.store().as_ref(), log).await
        {
            tracing::warn!("trimming the audit journal at shutdown: {e}");
        }
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

/// The dev instance's one line on getting a token: `claimdb token mint` for the same store
/// (the data directory, or the PostgreSQL database whose records hold the issuer's keys), and
/// the public URL when the bound address is not the default one the CLI would assume.
fn dev_token_hint(
    identity: &crate::signin::Identity,
    config: &crate::config::Config,
    addr: std::net::SocketAddr,
) -> String {
    let iss = identity.sign_in.public_url();
    let default_iss = format!("http://{}", crate::config::DEFAULT_LISTEN);
    let mut env = String::new();
    if !config.public_url_configured && iss != default_iss {
        env.push_str(&format!("CLAIMDB_PUBLIC_URL={iss} "));
    }
    let store = match &config.storage {
        crate::storage::Storage::Sqlite { dir, .. } => {
            format!(" --data-dir {}", shell_word(&dir.display().to_string()))
        }
        crate::storage::Storage::Postgres(pg) => {
            env.push_str(&format!(
                "CLAIMDB_STORAGE=postgres CLAIMDB_POSTGRES_URL={} ",
                pg.url_for_display()
            ));
            String::new()
        }
    };
    format!(
        "dev token: TOKEN=$({env}{bin} token mint --uid alice{store}); curl -H \"Authorization: Bearer $TOKEN\" http://{addr}/v1/me",
        bin = crate::self_command(),
    )
}

/// `text` quoted for a POSIX shell when it needs it.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:@=+,".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The rules line of the startup banner: where the rules in force come from and how to change
/// them. With rules in the database, puts the newest stored version in force first (seeding
/// version 1 from a configured file into an empty database).
async fn rules_banner(config: &crate::config::Config, engine: &Engine) -> anyhow::Result<String> {
    if let RulesSource::File(path) = engine.rules_source() {
        return Ok(format!(
            "rules: file {} (reloaded when it changes; rules_from = \"file\", so PUT /v1/admin/rules is refused)",
            path.display()
        ));
    }
    let seed = match &config.rules {
        Some(path) => Some((
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the rules file {}", path.display()))?,
            path.display().to_string(),
        )),
        None => None,
    };
    let version = engine
        .load_stored_rules(seed.as_ref().map(|(s, n)| (s.as_str(), n.as_str())))
        .await
        .map_err(|e| anyhow::anyhow!("the stored rules: {e}"))?;
    Ok(match (version, &config.rules) {
        (Some(v), Some(path)) => format!(
            "rules: database version {v} (rules_from = \"database\": {} only seeds an empty database; change rules with PUT /v1/admin/rules or `claimdb rules set`)",
            path.display()
        ),
        (Some(v), None) => format!(
            "rules: database version {v} (change them with PUT /v1/admin/rules or `claimdb rules set FILE`)"
        ),
        (None, _) => "rules: none yet, so every request is denied (PUT /v1/admin/rules or `claimdb rules set FILE` stores them; or `serve --rules FILE`)".to_owned(),
    })
}

/// Compiles the rules file.
fn load_rules(path: &Path) -> anyhow::Result<(Ruleset, String)> {
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

/// Without a configured admin key and none stored yet: makes one, shows it, and only then
/// stores its hash — a key that was never shown is never stored (if the process dies in
/// between, the next start makes another). If another node stored one meanwhile, says the
/// key shown is not valid.
async fn create_admin_key_if_none(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    if admin_key::stored_hash(&**store).await?.is_some() {
        return Ok(());
    }
    let (key, hash) = admin_key::generate();
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "admin key (shown only this once; claimdb keeps only its hash): {key}\n  send it as X-Claimdb-Admin-Key to use /v1/admin (lost it? `claimdb admin-key reset`)"
        )?;
        out.flush()?;
    }
    if !admin_key::store_hash(&**store, &hash, false).await? {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "the admin key above is NOT valid: another node stored its admin key first; use that one (or `claimdb admin-key reset`)"
        )?;
        out.flush()?;
    }
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
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
