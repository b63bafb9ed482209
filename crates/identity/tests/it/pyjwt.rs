//! Tokens from an independent implementation: PyJWT (with `cryptography`) signs with keys this
//! test generates, for every algorithm family we accept, and our verifier must accept them — and
//! must refuse PyJWT's HS256 and `none` tokens. When the system Python lacks PyJWT, the test
//! installs it from PyPI into the target directory (so `cargo test` works on a fresh machine);
//! if that fails too, the test fails with the install command — it never skips.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::*;

const SIGNER: &str = r#"
import json, sys, jwt
for req in json.load(sys.stdin):
    headers = {"kid": req["kid"]} if req["kid"] else None
    print(jwt.encode(req["claims"], req["key"], algorithm=req["alg"], headers=headers))
"#;

/// A `python3` command that can `import jwt`: the system's, or one with PyJWT installed (once,
/// from PyPI) under the target directory on its `PYTHONPATH`.
fn python() -> Command {
    static PYTHONPATH: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let probe = |path: Option<&str>| {
        let mut c = Command::new("python3");
        c.args(["-c", "import jwt, cryptography"]);
        if let Some(p) = path {
            c.env("PYTHONPATH", p);
        }
        matches!(c.output(), Ok(o) if o.status.success())
    };
    let path = PYTHONPATH.get_or_init(|| {
        if probe(None) {
            return None;
        }
        let dir = format!("{}/pydeps", env!("CARGO_TARGET_TMPDIR"));
        if !probe(Some(&dir)) {
            let status = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--target", &dir, "PyJWT[crypto]==2.*"])
                .status();
            assert!(
                matches!(status, Ok(s) if s.success()) && probe(Some(&dir)),
                "PyJWT is required for the independent-implementation tests and could not be \
                 installed: run `python3 -m pip install 'PyJWT[crypto]==2.*'` ({status:?})"
            );
        }
        Some(dir)
    });
    let mut c = Command::new("python3");
    if let Some(p) = path {
        c.env("PYTHONPATH", p);
    }
    c
}

/// Signs every request (key PEM or secret, alg, kid, claims) in one PyJWT process.
fn pyjwt_sign(requests: &[(String, &str, Option<&str>, Value)]) -> Vec<String> {
    let mut child = python()
        .args(["-c", SIGNER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reqs: Vec<Value> = requests
        .iter()
        .map(
            |(key, alg, kid, claims)| json!({"key": key, "alg": alg, "kid": kid, "claims": claims}),
        )
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(reqs).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "PyJWT failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tokens: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(tokens.len(), requests.len());
    tokens
}

#[tokio::test]
async fn tokens_signed_by_pyjwt_verify() {
    let keys = [
        TestKey::rsa("rs256", "RS256"),
        TestKey::rsa("rs512", "RS512"),
        TestKey::rsa("ps256", "PS256"),
        TestKey::ec("es256", "ES256"),
        TestKey::ec("es384", "ES384"),
        TestKey::ed("eddsa"),
    ];
    let idp = Idp::start().await;
    idp.publish(&keys.iter().collect::<Vec<_>>());
    let p = simple_provider(
        &idp,
        &["RS256", "RS512", "PS256", "ES256", "ES384", "EdDSA"],
    );
    let h = harness(&[p], Default::default());
    h.verifier.start().await;
    let mut requests = Vec::new();
    for k in &keys {
        let mut c = claims(&idp.base, "api");
        c["sub"] = json!(format!("py-{}", k.kid));
        requests.push((k.pkcs8_pem.clone(), k.alg, Some(k.kid.as_str()), c));
    }
    // PyJWT's HMAC token keyed with the public key's modulus (PyJWT itself refuses PEM and JWK
    // text as HMAC secrets), and its unsigned token: both must be refused.
    let c = claims(&idp.base, "api");
    requests.push((
        keys[0].jwk["n"].as_str().unwrap().to_owned(),
        "HS256",
        Some("rs256"),
        c.clone(),
    ));
    requests.push((String::new(), "none", None, c));
    let tokens = pyjwt_sign(&requests);
    for (k, token) in keys.iter().zip(&tokens) {
        let got = h.verifier.verify(token, now()).await;
        assert!(got.is_ok(), "PyJWT {} token refused: {got:?}", k.alg);
        assert_eq!(got.unwrap().uid, format!("py-{}", k.kid));
    }
    for token in &tokens[keys.len()..] {
        assert_eq!(
            h.verifier.verify(token, now()).await.unwrap_err().reason(),
            "algorithm-not-allowed"
        );
    }
}
