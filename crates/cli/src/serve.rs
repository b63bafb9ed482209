//! `claimdb serve`: opens the configured store (embedded SQLite or PostgreSQL), binds the listener, serves until SIGINT/SIGTERM,
//! then drains in-flight requests and closes the store so every acknowledged write is on disk.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use claimdb_engine::Engine;
use claimdb_server::ServerConfig;
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
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "claimdb listening on http://{addr} ({})",
            config.storage.describe()
        )?;
        writeln!(
            out,
            "note: authorization is not enforced yet in this version; every request is allowed. Keep it on loopback."
        )?;
        if !config.providers.is_empty() {
            writeln!(
                out,
                "note: {} provider(s) configured; `claimdb token inspect` checks tokens against them, but the server does not enforce them yet.",
                config.providers.len()
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
    let engine = Arc::new(Engine::new(store.clone()));
    let server_config = ServerConfig {
        max_body_bytes: config.max_body_bytes,
    };
    claimdb_server::run(listener, engine, server_config, shutdown_signal())
        .await
        .context("server failed")?;
    store.close().await.context("closing the store")?;
    tracing::info!("claimdb stopped");
    Ok(ExitCode::SUCCESS)
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
