//! `serve`'s identity wiring: the token verifier (every `[[providers]]` plus claimdb's own
//! issuer, so claimdb tokens verify through the same path), and claimdb as an issuer — the key
//! ring in `<data_dir>/issuer`, the custom-token signers, refresh tokens, login and sessions
//! over the store's system records — with their background tasks (key refresh, scheduled key
//! rotation, the sweep of expired records).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use claimdb_engine::provider_keys::StoreKeyPersistence;
use claimdb_identity::claim_names::ISSUER_PROVIDER_NAME;
use claimdb_identity::io::SystemClock;
use claimdb_identity::{HttpFetcher, Verifier, VerifierDeps, validate_providers};
use claimdb_signin::{CustomTokens, LoginClient, LoginDeps, RefreshTokens, SignIn, TokenService};
use claimdb_store::Store;

use crate::config::Config;

/// How often the issuer's key ring is checked for a due rotation (and other processes' changes).
const KEY_MAINTENANCE: Duration = Duration::from_secs(300);
/// How often expired refresh tokens, login attempts and sessions are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Longest wait between two key-refresh rounds of a verifier.
const KEY_REFRESH_POLL: Duration = Duration::from_secs(60);

/// What `serve` hands the engine.
pub(crate) struct Identity {
    pub verifier: Arc<Verifier>,
    pub sign_in: Arc<SignIn>,
    custom: Option<Arc<CustomTokens>>,
}

/// Builds the verifier and claimdb's issuer for a server bound to `bound` (no network yet).
pub(crate) async fn build(
    config: &Config,
    bound: SocketAddr,
    store: &Arc<dyn Store>,
) -> anyhow::Result<Identity> {
    let issuer_config = config.issuer_at(bound)?;
    // With PostgreSQL the key ring is in the database (shared by every node).
    let issuer = crate::issuer_keys::open_issuer(config, issuer_config, Some(store)).await?;
    let fetcher = Arc::new(
        HttpFetcher::new(Duration::from_millis(config.key_cache.fetch_timeout_ms))
            .context("HTTP client")?,
    );
    let deps = VerifierDeps {
        fetcher: fetcher.clone(),
        persistence: Arc::new(StoreKeyPersistence(store.clone())),
        clock: Arc::new(SystemClock),
    };
    if config
        .providers
        .iter()
        .any(|p| p.name == ISSUER_PROVIDER_NAME)
    {
        anyhow::bail!(
            "invalid [[providers]]: the name {ISSUER_PROVIDER_NAME:?} is reserved for claimdb's own issuer"
        );
    }
    let mut providers = validate_providers(&config.providers).context("invalid [[providers]]")?;
    providers.push(issuer.provider());
    let verifier = Arc::new(
        Verifier::new(providers, config.key_cache.clone(), deps.clone())
            .context("invalid [[providers]]")?,
    );
    let custom = if config.custom_token_signers.is_empty() {
        None
    } else {
        Some(Arc::new(
            CustomTokens::new(&config.custom_token_signers, config.key_cache.clone(), deps)
                .context("invalid [[custom_token_signers]]")?,
        ))
    };
    let records: Arc<dyn Store> = store.clone();
    let tokens = TokenService::new(
        issuer.clone(),
        verifier.clone(),
        custom.clone(),
        RefreshTokens::new(records.clone(), issuer.config().refresh_ttl),
    );
    let login = if config.providers.iter().any(|p| p.client_id.is_some()) {
        Some(
            LoginClient::new(
                &issuer.config().issuer,
                &config.app_redirects,
                &config.providers,
                LoginDeps {
                    verifier: verifier.clone(),
                    records: records.clone(),
                    fetcher: fetcher.clone(),
                    poster: fetcher,
                },
            )
            .context("invalid login settings")?,
        )
    } else {
        None
    };
    let sign_in = Arc::new(SignIn::new(
        issuer,
        tokens,
        login,
        records,
        config.app_redirects.clone(),
    ));
    Ok(Identity {
        verifier,
        sign_in,
        custom,
    })
}

impl Identity {
    /// Starts the background work: first key fetches then scheduled refreshes (the listener is
    /// already up; `/readyz` says "not ready" until every provider has keys), key rotation on
    /// schedule, and the sweep of expired records.
    pub(crate) fn spawn(&self) {
        let verifier = self.verifier.clone();
        tokio::spawn(async move {
            verifier.start().await;
            let _ = verifier.spawn_background(KEY_REFRESH_POLL).await;
        });
        if let Some(custom) = self.custom.clone() {
            tokio::spawn(async move {
                custom.start().await;
                loop {
                    tokio::time::sleep(KEY_REFRESH_POLL).await;
                    custom.verifier().refresh_due(SystemTime::now()).await;
                }
            });
        }
        // Detached: both end by themselves when the issuer / sign-in is dropped at shutdown.
        drop(
            self.sign_in
                .issuer()
                .spawn_maintenance(Arc::new(SystemClock), KEY_MAINTENANCE),
        );
        drop(self.sign_in.spawn_sweeper(SWEEP_EVERY));
    }
}
