//! Emulator mode: `claimdb emulator` (a Firestore emulator for tests: temporary data, open
//! rules unless given a file, port 8080 like Firebase's) and what `serve` needs for
//! `emulator = true` — the refusal of production-looking configurations, the per-project
//! databases, the startup banner.
//!
//! What emulator mode accepts (unverified tokens, `Bearer owner`) is the engine's
//! (`claimdb_engine::emulator`); its projects and control endpoints are the server's
//! (`claimdb_server::emulator`). This module only wires them.

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use claimdb_engine::{Engine, EngineOptions, compile_rules};
use claimdb_rules::Ruleset;
use claimdb_server::emulator::{Emulator, OpenProject};
use claimdb_server::{AppState, ServerConfig};
use claimdb_store::Store;
use claimdb_store::sqlite::SqliteStore;
use tracing_subscriber::EnvFilter;

/// Where `claimdb emulator` listens by default: the Firestore emulator's port.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The rules of an emulator started without a rules file, as the Firestore emulator's:
/// everything allowed.
const OPEN_RULES: &str = "rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /{document=**} {
      allow read, write: if true;
    }
  }
}
";

/// What `claimdb emulator` was asked for.
pub(crate) struct Args {
    pub listen: Option<String>,
    pub project_id: Option<String>,
    pub rules: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub force: bool,
}

/// The parts of a configuration that make emulator mode unsafe: it verifies no token of an
/// issuer it has no provider for and lets `Bearer owner` bypass the rules, so it must not face
/// a network or hold production data. Refused unless forced.
pub(crate) fn refuse_unsafe(
    listen: SocketAddr,
    providers: usize,
    postgres: bool,
    force: bool,
) -> anyhow::Result<()> {
    let mut reasons = Vec::new();
    if !listen.ip().is_loopback() {
        reasons.push(format!("it listens on {listen}, not on a loopback address"));
    }
    if providers > 0 {
        reasons.push(format!(
            "it has {providers} identity provider(s) configured"
        ));
    }
    if postgres {
        reasons.push("its storage is PostgreSQL".to_owned());
    }
    if reasons.is_empty() || force {
        return Ok(());
    }
    bail!(
        "refusing emulator mode: this configuration looks like production ({}). Emulator mode \
         accepts unsigned tokens and `Bearer owner`, which bypasses the rules. If you mean it, \
         set emulator_force = true (claimdb emulator --force)",
        reasons.join("; ")
    )
}

/// The banner lines every emulator prints at start.
pub(crate) fn banner_lines() -> [&'static str; 2] {
    [
        "EMULATOR MODE: unsigned tokens are accepted and not verified (only configured providers' tokens are), and `Bearer owner` bypasses the rules. For tests only; never expose it.",
        "emulator endpoints: PUT /emulator/v1/projects/{project}:securityRules, DELETE /emulator/v1/projects/{project}/databases/(default)/documents; every project id gets its own database",
    ]
}

/// Makes each new project's engine: an embedded store in `root/p-{id}` (the prefix keeps ids
/// such as `..` inside `root`), deciding by `rules` until its own are put.
pub(crate) fn open_projects(root: PathBuf, rules: Ruleset, origin: String) -> OpenProject {
    Box::new(move |id: String| {
        let dir = root.join(format!("p-{id}"));
        let (rules, origin) = (rules.clone(), origin.clone());
        Box::pin(async move {
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&dir))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            let mut options = EngineOptions::new(rules, origin);
            options.emulator = true;
            let store: Arc<dyn Store> = Arc::new(store);
            Ok(Arc::new(Engine::new(store, options)))
        })
    })
}

/// `claimdb emulator`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .or_else(|_| EnvFilter::try_new("warn,claimdb=info"))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    crate::runtime()?.block_on(emulate(args))
}

async fn emulate(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let listen_text = args.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen: SocketAddr = listen_text.parse().with_context(|| {
        format!("listen address {listen_text:?} is not IP:PORT (for example {DEFAULT_LISTEN})")
    })?;
    refuse_unsafe(listen, 0, false, args.force)?;
    let db = match args.project_id {
        Some(p) => {
            claimdb_firestore::Database::new(p).map_err(|e| anyhow::anyhow!("--project-id: {e}"))?
        }
        None => claimdb_firestore::Database::default(),
    };
    // Temporary unless a directory is given: removed when `temp` drops, after the stores close.
    let (temp, root) = match args.data_dir {
        Some(dir) => (None, dir),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("claimdb-emulator-")
                .tempdir()
                .context("cannot make a temporary directory for the emulator's data")?;
            let root = temp.path().to_path_buf();
            (Some(temp), root)
        }
    };
    let (rules, origin) = match &args.rules {
        Some(path) => load_rules(path)?,
        None => (
            compile_rules(OPEN_RULES).map_err(|e| anyhow::anyhow!("{e}"))?,
            "open rules (no rules file: everything allowed)".to_owned(),
        ),
    };
    let open = open_projects(root.clone(), rules.clone(), origin.clone());
    let engine = open(db.project().to_owned()).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot open the emulator's store in {}: {e}",
            root.display()
        )
    })?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let emulator = Arc::new(Emulator::new(open));
    let config = ServerConfig {
        firestore: db.clone(),
        ..ServerConfig::default()
    };
    let state = AppState::new(engine.clone(), config).with_emulator(Some(emulator.clone()));
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "claimdb emulator listening on http://{addr} (project {}; FIRESTORE_EMULATOR_HOST={addr}; started in {} ms)",
            db.project(),
            started.elapsed().as_millis()
        )?;
        for line in banner_lines() {
            writeln!(out, "{line}")?;
        }
        writeln!(
            out,
            "rules: {origin}{}",
            if args.rules.is_some() {
                " (replace them per project with PUT …:securityRules)"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "data: {} ({})",
            root.display(),
            if temp.is_some() {
                "temporary, removed at exit"
            } else {
                "kept"
            }
        )?;
        out.flush()?;
    }
    claimdb_server::serve(listener, state, crate::serve::shutdown_signal())
        .await
        .context("server failed")?;
    close_projects(&emulator).await;
    if let Err(e) = engine.store().close().await {
        tracing::warn!("closing the emulator's store: {e}");
    }
    drop(temp);
    Ok(ExitCode::SUCCESS)
}

/// Closes the stores of the projects the emulator made (not the configured project's).
pub(crate) async fn close_projects(emulator: &Emulator) {
    for engine in emulator.engines().await {
        if let Err(e) = engine.store().close().await {
            tracing::warn!("closing an emulator project's store: {e}");
        }
    }
}

fn load_rules(path: &Path) -> anyhow::Result<(Ruleset, String)> {
    let source = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the rules file {}", path.display()))?;
    let ruleset = compile_rules(&source).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((ruleset, path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_looking_configurations_are_refused_unless_forced() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let open: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(refuse_unsafe(local, 0, false, false).is_ok());
        for (listen, providers, postgres, what) in [
            (open, 0, false, "not on a loopback address"),
            (local, 2, false, "2 identity provider(s)"),
            (local, 0, true, "PostgreSQL"),
        ] {
            let e = refuse_unsafe(listen, providers, postgres, false).unwrap_err();
            assert!(e.to_string().contains(what), "{e}");
            assert!(refuse_unsafe(listen, providers, postgres, true).is_ok());
        }
    }

    #[test]
    fn the_open_rules_compile() {
        assert!(compile_rules(OPEN_RULES).is_ok());
    }
}
