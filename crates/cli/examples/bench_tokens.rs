//! Makes an identity provider's worth of benchmark material: an ES256 key, its JWKS
//! (`jwks.json`) and `tokens.txt` with `TOKENS_PER_USER` distinct tokens for each of `USERS`
//! users (lines `uid token`, users interleaved), valid for two hours.
//!
//! Usage: bench_tokens OUT_DIR ISSUER AUDIENCE USERS TOKENS_PER_USER

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, issuer, audience, users, per_user] = args.as_slice() else {
        return Err("usage: bench_tokens OUT_DIR ISSUER AUDIENCE USERS TOKENS_PER_USER".into());
    };
    let users: usize = users.parse()?;
    let per_user: usize = per_user.parse()?;
    let out = std::path::Path::new(out);
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|e| format!("keygen: {e}"))?;
    let point = key.public_key().as_ref();
    let (x, y) = point[1..].split_at(32);
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "bench", "alg": "ES256", "use": "sig", "x": B64.encode(x), "y": B64.encode(y)}]});
    std::fs::write(out.join("jwks.json"), jwks.to_string())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let header = B64.encode(json!({"alg": "ES256", "typ": "JWT", "kid": "bench"}).to_string());
    let rng = SystemRandom::new();
    let mut file = std::io::BufWriter::new(std::fs::File::create(out.join("tokens.txt"))?);
    for t in 0..per_user {
        for u in 0..users {
            let claims = json!({
                "iss": issuer, "aud": audience, "sub": format!("user{u}"),
                "iat": now - 5, "exp": now + 7200, "tier": if u % 3 == 0 { "pro" } else { "free" },
                "email": format!("user{u}@example.com"), "nonce_for_distinct_tokens": t,
            });
            let input = format!("{header}.{}", B64.encode(claims.to_string()));
            let sig = key
                .sign(&rng, input.as_bytes())
                .map_err(|e| format!("sign: {e}"))?;
            writeln!(file, "user{u} {input}.{}", B64.encode(sig.as_ref()))?;
        }
    }
    file.flush()?;
    Ok(())
}
