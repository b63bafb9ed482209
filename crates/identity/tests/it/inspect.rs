//! `inspect`: a newcomer sees the header, the claims, the matching provider and, for a refused
//! token, the reason in words and what to do.

use claimdb_identity::{Verdict, inspect};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn inspect_explains_verdicts() {
    let k = TestKey::rsa("k", "RS256");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    let h = harness(&[simple_provider(&idp, &["RS256"])], Default::default());
    h.verifier.start().await;

    let good = k.token(&claims(&idp.base, "api"));
    let ins = inspect(&good, Some(&h.verifier), now()).await;
    assert!(matches!(ins.verdict, Verdict::Verified(_)));
    assert_eq!(ins.exit_code(), 0);
    assert_eq!(ins.provider.as_deref(), Some("p"));
    let text = ins.render();
    assert!(text.contains("VERIFIED: uid \"alice\""), "{text}");
    assert!(text.contains("expires in 60 min"), "{text}");

    let mut c = claims(&idp.base, "other-app");
    c["exp"] = json!(NOW + 600);
    let ins = inspect(&k.token(&c), Some(&h.verifier), now()).await;
    assert_eq!(ins.exit_code(), 1);
    let text = ins.render();
    assert!(text.contains("NOT VERIFIED (wrong-audience)"), "{text}");
    assert!(text.contains("minted for another app"), "{text}");
    assert!(text.contains("\"aud\": \"other-app\""), "{text}");

    let stranger = k.token(&claims("https://stranger.example/", "api"));
    let text = inspect(&stranger, Some(&h.verifier), now()).await.render();
    assert!(
        text.contains("unknown-issuer") && text.contains(&idp.base),
        "{text}"
    );

    // Without a configuration: decoded, not checked, exit 1.
    let ins = inspect(&good, None, now()).await;
    assert!(matches!(ins.verdict, Verdict::NotChecked));
    assert_eq!(ins.exit_code(), 1);
    assert!(ins.render().contains("\"kid\": \"k\""));

    let text = inspect("garbage", Some(&h.verifier), now()).await.render();
    assert!(
        text.contains("Could not decode") && text.contains("(malformed)"),
        "{text}"
    );
}
