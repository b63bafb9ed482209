//! `claimdb token inspect`, as a library: decode a token for a person — header, claims, times in
//! words, which provider its `iss` routes to — and, given a verifier, whether it verifies and if
//! not exactly why, with a hint of what to do. The CLI prints [`Inspection::render`] and maps
//! [`Inspection::exit_code`]; this file does no printing.
//!
//! Decoding here is lenient on purpose (it shows what a refused token contains); the verdict
//! always comes from the real verifier.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::error::VerifyError;
use crate::io::unix_secs;
use crate::verify::{VerifiedToken, Verifier};

/// What `inspect` found.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub header: Option<Map<String, Value>>,
    pub claims: Option<Map<String, Value>>,
    /// Why the token could not even be shown, if it could not.
    pub decode_problem: Option<String>,
    /// The provider the token's `iss` routes to, when a verifier was given.
    pub provider: Option<String>,
    pub verdict: Verdict,
    /// Plain-language facts: times relative to now, and the like.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Verdict {
    Verified(Arc<VerifiedToken>),
    Refused {
        reason: &'static str,
        explanation: String,
        hint: String,
    },
    /// No verifier (no configuration) was given: decoded only.
    NotChecked,
}

impl Inspection {
    /// 0 verifies, 1 does not (or was not checked); usage errors are the CLI's.
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            Verdict::Verified(_) => 0,
            _ => 1,
        }
    }

    /// Applies the user's revocation to a verified token, as the server does after verifying:
    /// one issued before `valid_after` (Unix seconds, the user's `tokens_valid_after`) is
    /// refused.
    pub fn apply_revocation(&mut self, valid_after: i64) {
        if let Verdict::Verified(t) = &self.verdict
            && let Err(e) = crate::claims::check_not_revoked(t.iat, valid_after)
        {
            self.verdict = Verdict::Refused {
                reason: e.reason(),
                explanation: e.to_string(),
                hint: REVOKED_HINT.into(),
            };
        }
    }

    /// The report a person reads.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let pretty = |m: &Map<String, Value>| {
            serde_json::to_string_pretty(m).unwrap_or_else(|_| "(unprintable)".into())
        };
        if let Some(p) = &self.decode_problem {
            let _ = writeln!(out, "Could not decode the token: {p}");
        }
        if let Some(h) = &self.header {
            let _ = writeln!(out, "Header:\n{}", pretty(h));
        }
        if let Some(c) = &self.claims {
            let _ = writeln!(out, "Claims:\n{}", pretty(c));
        }
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        if let Some(p) = &self.provider {
            let _ = writeln!(out, "Provider: {p}");
        }
        match &self.verdict {
            Verdict::Verified(t) => {
                let roles = if t.roles.is_empty() {
                    "none".to_owned()
                } else {
                    t.roles.join(", ")
                };
                let _ = writeln!(
                    out,
                    "VERIFIED: uid {:?} from provider {:?}; roles: {roles}",
                    t.uid, t.provider
                );
            }
            Verdict::Refused {
                reason,
                explanation,
                hint,
            } => {
                let _ = writeln!(out, "NOT VERIFIED ({reason}): {explanation}");
                if !hint.is_empty() {
                    let _ = writeln!(out, "What to do: {hint}");
                }
            }
            Verdict::NotChecked => {
                let _ = writeln!(
                    out,
                    "NOT CHECKED: no configuration was given, so the signature and claims were not verified (pass --config)."
                );
            }
        }
        out
    }
}

/// What to do about a revoked token.
const REVOKED_HINT: &str = "the user's sessions were revoked; sign in again";

/// Decodes and (with a verifier) verifies `token` at `now`. Revocation is not the verifier's:
/// a caller that can read the user's records applies it with [`Inspection::apply_revocation`].
pub async fn inspect(token: &str, verifier: Option<&Verifier>, now: SystemTime) -> Inspection {
    let token = token.trim();
    let mut ins = Inspection {
        header: None,
        claims: None,
        decode_problem: None,
        provider: None,
        verdict: Verdict::NotChecked,
        notes: Vec::new(),
    };
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() >= 2 && token.len() <= crate::jose::MAX_TOKEN_BYTES {
        ins.header = lenient_object(parts[0]);
        ins.claims = lenient_object(parts[1]);
    }
    if ins.header.is_none() || ins.claims.is_none() {
        ins.decode_problem = Some(
            "a JWT is three base64url parts separated by dots, the first two JSON objects; this is not".into(),
        );
    }
    if let Some(c) = &ins.claims {
        ins.notes = time_notes(c, unix_secs(now));
    }
    let Some(v) = verifier else { return ins };
    if let Some(iss) = ins
        .claims
        .as_ref()
        .and_then(|c| c.get("iss"))
        .and_then(Value::as_str)
    {
        ins.provider = v.provider_for_issuer(iss).map(|p| p.name.clone());
    }
    ins.verdict = match v.verify(token, now).await {
        Ok(t) => Verdict::Verified(t),
        Err(e) => Verdict::Refused {
            reason: e.reason(),
            explanation: e.to_string(),
            hint: hint(&e, v),
        },
    };
    ins
}

fn lenient_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn time_notes(c: &Map<String, Value>, now: i64) -> Vec<String> {
    let mut notes = Vec::new();
    for (name, what) in [("iat", "issued"), ("nbf", "valid from"), ("exp", "expires")] {
        if let Some(t) = c.get(name).and_then(Value::as_i64) {
            let d = t - now;
            let rel = if d >= 0 {
                format!("in {}", span(d))
            } else {
                format!("{} ago", span(-d))
            };
            notes.push(format!("{what} {rel} ({name} = {t})"));
        }
    }
    notes
}

fn span(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn hint(e: &VerifyError, v: &Verifier) -> String {
    match e {
        VerifyError::UnknownIssuer(_) => {
            let known: Vec<String> = v.providers().map(|p| format!("{:?}", p.issuer.display())).collect();
            format!(
                "configure a provider whose issuer is exactly the token's iss; configured issuers: {}",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )
        }
        VerifyError::Expired { .. } => "get a fresh token from your identity provider (sign in again or refresh)".into(),
        VerifyError::NotYetValid { .. } | VerifyError::IssuedInFuture { .. } => {
            "check the clocks of this machine and of the identity provider".into()
        }
        VerifyError::WrongAudience { .. } => {
            "the token was minted for another app or API: request it with the audience configured for this provider, or add that audience to the provider".into()
        }
        VerifyError::AlgorithmNotAllowed { .. } => {
            "if the provider really signs with this algorithm, add it to the provider's algorithms; none and HMAC are never accepted".into()
        }
        VerifyError::UnknownKey { .. } => {
            "the key that signed this token is not published by the provider (rotated out, or the token is forged or from another environment)".into()
        }
        VerifyError::KeysUnavailable { .. } | VerifyError::IdpUnreachable { .. } => {
            "check that this machine can reach the provider's key URL".into()
        }
        VerifyError::BadSignature { .. } => "the token was changed after signing, or comes from a different key pair".into(),
        VerifyError::Revoked { .. } => REVOKED_HINT.into(),
        VerifyError::BadSubject { .. } => "check uid_claim in the provider configuration".into(),
        VerifyError::TenantMismatch { .. } => "the token's tid must be the tenant in its issuer".into(),
        VerifyError::TenantNotAllowed(_) => "add the tenant to the provider's tenants, if it should be let in".into(),
        _ => String::new(),
    }
}
