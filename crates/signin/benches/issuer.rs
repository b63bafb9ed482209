//! Issuer throughput: minting claimdb ID tokens (ES256 and RS256; the active key is parsed once
//! and kept, so each mint is JSON + one signature), and verifying a freshly minted claimdb token
//! through the shared Verifier (the local key source: no fetch, the live key set read per
//! verification). Compare with `openssl speed -seconds 3 rsa2048 ecdsap256` run right after.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use claimdb_identity::io::{NoPersistence, SystemClock};
use claimdb_identity::{HttpFetcher, KeyCacheConfig, Verifier, VerifierDeps};
use claimdb_signin::{Issuer, IssuerSettings, MemoryKeyStorage, MintRequest, SigningAlg};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

fn issuer(alg: SigningAlg) -> Option<Arc<Issuer>> {
    let cfg = IssuerSettings {
        algorithm: Some(alg),
        ..Default::default()
    }
    .validate("https://db.bench.example")
    .ok()?;
    // Opening generates the first key on a blocking thread, so it needs a runtime.
    let rt = tokio::runtime::Builder::new_current_thread().build().ok()?;
    rt.block_on(Issuer::open(
        cfg,
        Arc::new(MemoryKeyStorage::default()),
        SystemTime::now(),
    ))
    .ok()
}

fn request() -> MintRequest {
    MintRequest {
        uid: "user-0123456789".into(),
        claims: json!({"moderator": true, "tier": "gold", "org": "acme"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        roles: vec!["editor".into()],
        provider: Some("auth0".into()),
        ..Default::default()
    }
}

/// Polls a future that never waits (the local key source does no IO).
fn ready<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("issuer");
    g.throughput(Throughput::Elements(1));
    for alg in [SigningAlg::ES256, SigningAlg::RS256] {
        let Some(issuer) = issuer(alg) else { return };
        let req = request();
        g.bench_function(format!("mint {}", alg.name()), |b| {
            b.iter(|| issuer.mint(&req, SystemTime::now()).map(|m| m.exp))
        });
        let Ok(fetcher) = HttpFetcher::new(std::time::Duration::from_secs(1)) else {
            return;
        };
        let deps = VerifierDeps {
            fetcher: Arc::new(fetcher),
            persistence: Arc::new(NoPersistence),
            clock: Arc::new(SystemClock),
        };
        let cache = KeyCacheConfig {
            token_cache_entries: 0,
            ..Default::default()
        };
        let Ok(verifier) = Verifier::new(vec![issuer.provider()], cache, deps) else {
            return;
        };
        let tokens: Vec<String> = (0..256)
            .filter_map(|_| issuer.mint(&req, SystemTime::now()).ok().map(|m| m.token))
            .collect();
        let mut i = 0;
        g.bench_function(format!("verify claimdb {}", alg.name()), |b| {
            b.iter(|| {
                i = (i + 1) % tokens.len();
                ready(verifier.verify(&tokens[i], SystemTime::now())).map(|r| r.is_ok())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
