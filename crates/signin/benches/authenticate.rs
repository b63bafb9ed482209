//! The cost of authenticating a request in the engine, per credential kind, over the embedded
//! store: a claimdb bearer token already in the verified-token cache (the steady state of an
//! app sending the same token), and a session cookie (one system-record read for the session
//! plus the user-record read both paths do). 1,000 users; each has custom claims, so the
//! overlay runs on both paths.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use claimdb_engine::{Credential, Engine, EngineOptions, RequestContext, SignInHooks, users};
use claimdb_identity::io::{NoPersistence, SystemClock};
use claimdb_identity::{HttpFetcher, KeyCacheConfig, Verifier, VerifierDeps};
use claimdb_signin::{
    Issuer, IssuerSettings, MemoryKeyStorage, MintRequest, RefreshTokens, SessionIdentity, SignIn,
    TokenService,
};
use claimdb_store::{SqliteStore, Store};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

const USERS: usize = 1000;

struct Setup {
    engine: Engine,
    bearer: Vec<RequestContext>,
    session: Vec<RequestContext>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Option<Setup> {
    let dir = tempfile::tempdir().ok()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).ok()?);
    let cfg = IssuerSettings::default()
        .validate("https://db.bench.example")
        .ok()?;
    let issuer = Issuer::open(
        cfg,
        Arc::new(MemoryKeyStorage::default()),
        SystemTime::now(),
    )
    .await
    .ok()?;
    let deps = VerifierDeps {
        fetcher: Arc::new(HttpFetcher::new(Duration::from_secs(1)).ok()?),
        persistence: Arc::new(NoPersistence),
        clock: Arc::new(SystemClock),
    };
    let verifier =
        Arc::new(Verifier::new(vec![issuer.provider()], KeyCacheConfig::default(), deps).ok()?);
    let records: Arc<dyn Store> = store.clone();
    let tokens = TokenService::new(
        issuer.clone(),
        verifier.clone(),
        None,
        RefreshTokens::new(records.clone(), issuer.config().refresh_ttl),
    );
    let sign_in = Arc::new(SignIn::new(
        issuer.clone(),
        tokens,
        None,
        records,
        Vec::new(),
    ));
    let mut bearer = Vec::new();
    let mut session = Vec::new();
    let claims = json!({"tier": "pro", "org": "acme"}).as_object().cloned()?;
    for i in 0..USERS {
        let uid = format!("user{i}");
        users::modify_at(&*store, &uid, 0, |r| {
            r.custom_claims = json!({"moderator": i % 2 == 0})
                .as_object()
                .cloned()
                .unwrap_or_default();
            true
        })
        .await
        .ok()?;
        let minted = issuer
            .mint(
                &MintRequest {
                    uid: uid.clone(),
                    claims: claims.clone(),
                    provider: Some("op".into()),
                    ..MintRequest::default()
                },
                SystemTime::now(),
            )
            .ok()?;
        bearer.push(RequestContext::new("b").with_credential(Credential::Bearer(minted.token)));
        let s = sign_in
            .sessions()
            .create(
                &SessionIdentity {
                    uid,
                    provider: "op".into(),
                    roles: Vec::new(),
                    claims: claims.clone(),
                },
                SystemTime::now() - Duration::from_secs(5),
            )
            .await
            .ok()?;
        session.push(RequestContext::new("s").with_credential(Credential::Session(s.id)));
    }
    let mut options = EngineOptions::new(claimdb_rules::Ruleset::locked(), "bench");
    options.verifier = Some(verifier);
    options.sign_in = Some(sign_in as Arc<dyn SignInHooks>);
    Some(Setup {
        engine: Engine::new(store, options),
        bearer,
        session,
        _dir: dir,
    })
}

fn bench(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let Some(s) = rt.block_on(setup()) else {
        eprintln!("benchmark setup failed");
        return;
    };
    // Warm the verified-token cache: the steady state of bearer requests.
    rt.block_on(async {
        for ctx in &s.bearer {
            let _ = s.engine.authenticate(ctx).await;
        }
    });
    let mut group = c.benchmark_group("authenticate");
    let mut i = 0usize;
    group.bench_function("bearer claimdb token (cached)", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % USERS;
            let ctx = &s.bearer[i];
            let engine = &s.engine;
            async move {
                engine
                    .authenticate(ctx)
                    .await
                    .ok()
                    .flatten()
                    .map(|p| p.roles.len())
            }
        })
    });
    let mut j = 0usize;
    group.bench_function("session cookie", |b| {
        b.to_async(&rt).iter(|| {
            j = (j + 1) % USERS;
            let ctx = &s.session[j];
            let engine = &s.engine;
            async move {
                engine
                    .authenticate(ctx)
                    .await
                    .ok()
                    .flatten()
                    .map(|p| p.roles.len())
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
