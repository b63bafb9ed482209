//! The JWKS cache against a real IdP on loopback: max-age clamping and refresh before expiry,
//! rotation with no failed verification, outages (cached keys keep working; a new verifier over
//! the persisted keys works while the IdP is down; staleness bound), the unknown-kid refetch
//! rate limit counted on the server, one shared fetch for concurrent callers, and requests that
//! arrive during the first fetch waiting for it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use claimdb_identity::KeyCacheConfig;
use serde_json::json;

use crate::support::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test]
async fn max_age_is_clamped_and_refresh_comes_before_expiry() {
    let k = TestKey::rsa("k1", "RS256");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    let cfg = KeyCacheConfig {
        min_max_age_secs: 60,
        max_max_age_secs: 600,
        ..Default::default()
    };
    // (server max-age, seconds after the fetch, whether a refresh is due by then)
    let cases: &[(Option<u64>, u64, bool)] = &[
        (Some(5), 40, false), // clamped up to 60 s: due at 48 s
        (Some(5), 49, true),
        (Some(300), 200, false), // due at 240 s, before the 300 s expiry
        (Some(300), 241, true),
        (Some(100_000), 479, false), // clamped down to 600 s: due at 480 s
        (Some(100_000), 481, true),
        (None, 479, false), // the default (3600 s) clamped to 600 s
    ];
    for &(max_age, after, due) in cases {
        *idp.state.max_age.lock().unwrap() = max_age;
        let h = harness(&[simple_provider(&idp, &["RS256"])], cfg.clone());
        h.verifier.start().await;
        let before = idp.jwks_hits();
        h.verifier.refresh_due(now() + secs(after)).await;
        let fetched = idp.jwks_hits() > before;
        assert_eq!(fetched, due, "max-age {max_age:?}, +{after} s");
    }
}

#[tokio::test]
async fn rotation_mid_run_fails_no_verification() {
    let k1 = TestKey::rsa("k1", "RS256");
    let k2 = TestKey::rsa("k2", "RS256");
    let idp = Idp::start().await;
    idp.publish(&[&k1]);
    *idp.state.max_age.lock().unwrap() = Some(300);
    let h = harness(&[simple_provider(&idp, &["RS256"])], Default::default());
    h.verifier.start().await;

    let t1 = k1.token(&claims(&idp.base, "api"));
    let t2 = k2.token(&claims(&idp.base, "api"));
    let signing_with_k2 = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (v, t1, t2, flag) = (
            h.verifier.clone(),
            t1.clone(),
            t2.clone(),
            signing_with_k2.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..200 {
                let t = if flag.load(Ordering::SeqCst) && (i + w) % 2 == 0 {
                    &t2
                } else {
                    &t1
                };
                if let Err(e) = v.verify(t, now() + secs(10)).await {
                    failures.push(e.reason());
                }
                tokio::task::yield_now().await;
            }
            failures
        }));
    }
    // The IdP publishes k2 next to k1, then starts signing with it before our scheduled refresh:
    // the unknown kid triggers the one allowed refetch.
    tokio::task::yield_now().await;
    idp.publish(&[&k1, &k2]);
    signing_with_k2.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "failed verifications across the rotation: {failures:?}"
    );
    assert!(h.verifier.verify(&t2, now() + secs(10)).await.is_ok());
    // Later the IdP retires k1; the scheduled refresh drops it and cached k1 verifications go too.
    idp.publish(&[&k2]);
    h.verifier.refresh_due(now() + secs(300)).await;
    assert_eq!(
        h.verifier
            .verify(&t1, now() + secs(300))
            .await
            .unwrap_err()
            .reason(),
        "unknown-key"
    );
    assert!(h.verifier.verify(&t2, now() + secs(300)).await.is_ok());
}

#[tokio::test]
async fn outage_keeps_cached_keys_and_restart_uses_persisted_keys() {
    let k = TestKey::ec("k1", "ES256");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    *idp.state.max_age.lock().unwrap() = Some(60);
    let cfg = KeyCacheConfig {
        max_stale_secs: 7200,
        max_max_age_secs: 3600,
        ..Default::default()
    };
    let h = harness(&[simple_provider(&idp, &["ES256"])], cfg.clone());
    h.verifier.start().await;
    let token = k.token(&claims(&idp.base, "api"));
    assert!(h.verifier.verify(&token, now()).await.is_ok());

    idp.set_down(true);
    h.verifier.refresh_due(now() + secs(100)).await;
    let m = &h.verifier.metrics(now() + secs(100))[0];
    assert_eq!((m.fetches, m.failures, m.keys), (2, 1, 1), "{m:?}");
    assert!(
        m.last_error.as_deref().unwrap_or("").contains("503"),
        "{m:?}"
    );
    assert_eq!(m.key_age, Some(secs(100)));
    // Cached keys keep verifying (a fresh token, so no verified-token cache hit).
    let mut c = claims(&idp.base, "api");
    c["sub"] = json!("bob");
    assert!(
        h.verifier
            .verify(&k.token(&c), now() + secs(100))
            .await
            .is_ok()
    );
    assert!(h.verifier.ready(now() + secs(100)));

    // claimdb restarts during the outage: a new verifier over the same persisted keys.
    let restarted = harness_with(
        &[simple_provider(&idp, &["ES256"])],
        cfg,
        h.persistence.clone(),
    );
    restarted.verifier.start().await;
    assert!(restarted.verifier.ready(now() + secs(120)));
    assert!(restarted.verifier.metrics(now())[0].loaded_from_persistence);
    assert!(
        restarted
            .verifier
            .verify(&token, now() + secs(120))
            .await
            .is_ok()
    );

    // Past the staleness bound the last-known keys are no longer trusted.
    let late = now() + secs(7201);
    assert!(!h.verifier.ready(late));
    assert_eq!(
        h.verifier.verify(&token, late).await.unwrap_err().reason(),
        "expired"
    );
    let mut fresh = claims(&idp.base, "api");
    fresh["iat"] = json!(NOW + 7200);
    fresh["exp"] = json!(NOW + 9000);
    assert_eq!(
        h.verifier
            .verify(&k.token(&fresh), late)
            .await
            .unwrap_err()
            .reason(),
        "keys-unavailable"
    );

    // The IdP comes back: the next scheduled refresh (after the failure backoff) restores service.
    idp.set_down(false);
    let back = late + secs(60);
    h.verifier.refresh_due(back).await;
    assert!(h.verifier.ready(back));
    assert!(h.verifier.verify(&k.token(&fresh), back).await.is_ok());
}

#[tokio::test]
async fn forged_kids_cannot_make_us_hammer_the_idp() {
    let k = TestKey::rsa("k1", "RS256");
    let attacker = TestKey::rsa("x", "RS256");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    let h = harness(&[simple_provider(&idp, &["RS256"])], Default::default());
    h.verifier.start().await;
    assert_eq!(idp.jwks_hits(), 1);
    for i in 0..100 {
        let mut hdr = attacker.header();
        hdr["kid"] = json!(format!("forged-{i}"));
        let t = attacker.sign(&hdr, &claims(&idp.base, "api"));
        let err = h.verifier.verify(&t, now() + secs(i)).await.unwrap_err();
        assert_eq!(err.reason(), "unknown-key");
    }
    // 100 forged kids within 100 s: the first refetch at 0 s, then one per 30 s (30, 60, 90).
    assert_eq!(idp.jwks_hits(), 1 + 4);
    let m = &h.verifier.metrics(now())[0];
    assert_eq!(m.on_demand_fetches, 4);
    assert_eq!(m.rate_limited, 96);
}

#[tokio::test]
async fn concurrent_requests_share_one_first_fetch() {
    let k = TestKey::rsa("k1", "RS256");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    idp.state.delay_ms.store(200, Ordering::SeqCst);
    let h = harness(&[simple_provider(&idp, &["RS256"])], Default::default());
    assert!(!h.verifier.ready(now()));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut c = claims(&idp.base, "api");
        c["sub"] = json!(format!("user{i}"));
        let (v, t) = (h.verifier.clone(), k.token(&c));
        tasks.push(tokio::spawn(async move {
            v.verify(&t, now())
                .await
                .map(|_| ())
                .map_err(|e| e.reason())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(()));
    }
    assert_eq!(idp.jwks_hits(), 1);
    assert!(h.verifier.ready(now()));
}

#[tokio::test]
async fn a_request_during_the_startup_fetch_waits_for_it() {
    let k = TestKey::ed("k1");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    idp.state.delay_ms.store(300, Ordering::SeqCst);
    let h = harness(&[simple_provider(&idp, &["EdDSA"])], Default::default());
    let v = h.verifier.clone();
    let start = tokio::spawn(async move { v.start().await });
    // Poll (with a deadline) until the startup fetch has reached the IdP.
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.jwks_hits() == 0 {
        assert!(Instant::now() < deadline, "startup fetch never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!h.verifier.ready(now()));
    let got = h
        .verifier
        .verify(&k.token(&claims(&idp.base, "api")), now())
        .await;
    assert!(got.is_ok(), "{got:?}");
    start.await.unwrap();
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn background_task_refreshes_on_the_injected_clock() {
    let k1 = TestKey::rsa("k1", "RS256");
    let k2 = TestKey::rsa("k2", "RS256");
    let idp = Idp::start().await;
    idp.publish(&[&k1]);
    *idp.state.max_age.lock().unwrap() = Some(120);
    let h = harness(&[simple_provider(&idp, &["RS256"])], Default::default());
    h.verifier.start().await;
    let task = h.verifier.spawn_background(Duration::from_millis(20));
    idp.publish(&[&k1, &k2]);
    h.clock.advance(secs(100)); // past 4/5 of 120 s
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.jwks_hits() < 2 {
        assert!(Instant::now() < deadline, "background refresh never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    // k2 is known without any on-demand refetch.
    assert!(
        h.verifier
            .verify(&k2.token(&claims(&idp.base, "api")), now() + secs(100))
            .await
            .is_ok()
    );
    assert_eq!(h.verifier.metrics(now())[0].on_demand_fetches, 0);
}

#[tokio::test]
async fn http_fetcher_limits_redirects_and_body_size() {
    use claimdb_identity::io::Fetcher;
    let k = TestKey::ed("k");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    *idp.state.max_age.lock().unwrap() = Some(777);
    let f = claimdb_identity::HttpFetcher::new(Duration::from_secs(5)).unwrap();
    let doc = f.get(&idp.jwks_uri()).await.unwrap();
    assert_eq!(doc.max_age, Some(secs(777)));
    assert!(
        f.get(&format!("{}/hop/2", idp.base)).await.is_ok(),
        "three hops are followed"
    );
    let err = f.get(&format!("{}/hop/3", idp.base)).await.unwrap_err();
    assert!(err.to_string().contains("redirect"), "{err}");
    let err = f.get(&format!("{}/huge", idp.base)).await.unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
    let err = f.get(&format!("{}/missing", idp.base)).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

/// Regression (issue 19, item 4): while the IdP hung, a token naming a key id not fetched yet
/// waited the whole fetch timeout (5 s) and was then refused as `unknown-key` — which a client
/// reads as "your token is forged". Now the wait is bounded by `first_fetch_wait_ms` (1 s by
/// default) and the refusal is the retryable, operational `idp-unreachable` — also when the
/// IdP fails fast instead of hanging —, tokens whose key is cached keep verifying during the
/// hang, and once the IdP answers again the new key is fetched. A kid the answering IdP does
/// not publish is still `unknown-key`.
#[tokio::test]
async fn unknown_kid_while_the_idp_hangs_is_unreachable_within_the_wait_bound() {
    let k1 = TestKey::ec("k1", "ES256");
    let k2 = TestKey::ec("k2", "ES256");
    let idp = Idp::start().await;
    idp.publish(&[&k1]);
    let cfg = KeyCacheConfig {
        fetch_timeout_ms: 1_500,
        ..Default::default()
    };
    assert_eq!(cfg.first_fetch_wait_ms, 1_000, "the default wait bound");
    let h = harness(&[simple_provider(&idp, &["ES256"])], cfg);
    h.verifier.start().await;
    let user = |sub: &str| {
        let mut c = claims(&idp.base, "api");
        c["sub"] = json!(sub);
        c
    };

    // The IdP accepts connections and answers nothing (for a minute).
    idp.state.delay_ms.store(60_000, Ordering::SeqCst);
    let started = Instant::now();
    let err = h
        .verifier
        .verify(&k2.token(&user("new-key")), now())
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.reason(), "idp-unreachable", "{err}");
    assert!(err.is_operational());
    assert_eq!(err.retry_after_secs(), Some(5));
    assert!(waited < Duration::from_millis(2_500), "waited {waited:?}");
    // A key that is cached keeps working during the hang, at once (a fresh token: no cache hit).
    let started = Instant::now();
    assert!(
        h.verifier
            .verify(&k1.token(&user("bob")), now())
            .await
            .is_ok()
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    // Another unknown kid while the refetch still hangs: the same bounded answer.
    let started = Instant::now();
    let err = h
        .verifier
        .verify(&k2.token(&user("other")), now() + secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "idp-unreachable", "{err}");
    assert!(started.elapsed() < Duration::from_millis(2_500));

    // The hung fetch gives up (fetch_timeout_ms); the IdP now fails fast instead.
    idp.state.delay_ms.store(0, Ordering::SeqCst);
    idp.set_down(true);
    let deadline = Instant::now() + secs(10);
    while h.verifier.metrics(now())[0].failures == 0 {
        assert!(Instant::now() < deadline, "the hung fetch never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = h
        .verifier
        .verify(&k2.token(&user("down")), now() + secs(40))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "idp-unreachable", "{err}");

    // Back, with the new key: the next refetch (past the rate limit) brings it.
    idp.set_down(false);
    idp.publish(&[&k1, &k2]);
    assert!(
        h.verifier
            .verify(&k2.token(&user("back")), now() + secs(80))
            .await
            .is_ok()
    );
    let k3 = TestKey::ec("k3", "ES256");
    let err = h
        .verifier
        .verify(&k3.token(&user("forged")), now() + secs(120))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "unknown-key", "{err}");
}
