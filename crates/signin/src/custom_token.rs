//! Firebase-format custom tokens (what the Admin SDKs' `createCustomToken` makes) from the
//! configured `[[custom_token_signers]]`: a backend holding a service key signs a short-lived
//! token for a uid, and claimdb exchanges it for its own ID token.
//!
//! Each signer becomes a provider of a dedicated [`Verifier`] (so custom tokens get the same
//! header policy, strict JSON, key caching and signature checks as every token, and can never
//! be used as a bearer token for data): issuer = the service account, RS256 only, audience =
//! Google's Identity Toolkit, uid from the `uid` claim. Then the custom-token rules on top:
//! `sub == iss`, `iat` present, `exp − iat ≤ 3600`, and the optional `claims` object (≤ 1000
//! bytes, no reserved names).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{Map, Value};

use claimdb_identity::config::{
    Alg, FixedKeys, IssuerMatch, KeyCacheConfig, KeySource, LocalKeys, Provider,
};
use claimdb_identity::keys::KeySet;
use claimdb_identity::{ConfigError, Verifier, VerifierDeps, VerifyError};

use crate::issuer::check_custom_claims;

/// The `aud` of every Firebase custom token.
pub const FIREBASE_CUSTOM_TOKEN_AUDIENCE: &str =
    "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit";
/// A custom token may live at most this long (`exp − iat`).
pub const MAX_CUSTOM_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// One `[[custom_token_signers]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomTokenSignerConfig {
    /// The custom token's `iss` and `sub`: the service account's email.
    pub issuer: String,
    /// A PEM public key or certificate of the signer (used whatever `kid` a token names).
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// A JWKS URL with the signer's keys.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// A `{kid: PEM certificate}` map URL, e.g.
    /// `https://www.googleapis.com/robot/v1/metadata/x509/<service account email>`.
    #[serde(default)]
    pub x509_uri: Option<String>,
}

impl CustomTokenSignerConfig {
    /// Validates the table and, for `public_key_file`, reads and parses the key (relative
    /// paths are taken from the process's working directory; the CLI resolves them against
    /// the config file first).
    pub fn load(&self) -> Result<Provider, ConfigError> {
        let err =
            |m: String| ConfigError::invalid(&format!("custom_token_signers {:?}", self.issuer), m);
        if self.issuer.is_empty() || self.issuer.len() > 256 {
            return Err(err("issuer must be the service account's email".into()));
        }
        let given = [
            self.public_key_file.is_some(),
            self.jwks_uri.is_some(),
            self.x509_uri.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(err(
                "give exactly one of public_key_file, jwks_uri and x509_uri".into(),
            ));
        }
        let keys = if let Some(path) = &self.public_key_file {
            let pem = std::fs::read(path)
                .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
            let set = KeySet::from_pinned_pem(&pem)
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
            KeySource::Local(LocalKeys {
                label: format!("file {}", path.display()),
                source: Arc::new(FixedKeys(Arc::new(set))),
            })
        } else if let Some(u) = &self.jwks_uri {
            claimdb_identity::validate::check_key_url(u).map_err(err)?;
            KeySource::Jwks(u.clone())
        } else if let Some(u) = &self.x509_uri {
            claimdb_identity::validate::check_key_url(u).map_err(err)?;
            KeySource::X509(u.clone())
        } else {
            return Err(err("no key source".into()));
        };
        Ok(Provider {
            name: self.issuer.clone(),
            issuer: IssuerMatch::Exact(self.issuer.clone()),
            additional_issuers: Vec::new(),
            keys,
            audiences: vec![FIREBASE_CUSTOM_TOKEN_AUDIENCE.to_owned()],
            algorithms: vec![Alg::RS256],
            uid_claim: "uid".to_owned(),
            clock_skew: Duration::from_secs(60),
            roles: Vec::new(),
            tenants: Vec::new(),
            trusted_roles_claim: None,
        })
    }
}

/// A custom token that verified.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomTokenIdentity {
    pub uid: String,
    /// The signer (service account email).
    pub signer: String,
    /// The token's `claims` object (the Admin SDK's developer claims), possibly empty.
    pub claims: Map<String, Value>,
    pub iat: i64,
}

/// Verifies custom tokens of the configured signers.
pub struct CustomTokens {
    verifier: Verifier,
}

impl CustomTokens {
    /// Builds the verifier (call [`CustomTokens::start`] to fetch URL-based keys).
    pub fn new(
        signers: &[CustomTokenSignerConfig],
        cache: KeyCacheConfig,
        deps: VerifierDeps,
    ) -> Result<CustomTokens, ConfigError> {
        let providers = signers
            .iter()
            .map(CustomTokenSignerConfig::load)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CustomTokens {
            verifier: Verifier::new(providers, cache, deps)?,
        })
    }

    pub async fn start(&self) {
        self.verifier.start().await;
    }

    /// The underlying verifier (for readiness, metrics and its background refresh).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Whether `iss` names a configured signer.
    pub fn is_signer(&self, iss: &str) -> bool {
        self.verifier.provider_for_issuer(iss).is_some()
    }

    /// Verifies a custom token.
    pub async fn verify(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<CustomTokenIdentity, VerifyError> {
        let v = self.verifier.verify(token, now).await?;
        let malformed = |m: &str| VerifyError::Malformed(format!("custom token: {m}"));
        let iss = v.claims.get("iss").and_then(Value::as_str).unwrap_or("");
        if v.claims.get("sub").and_then(Value::as_str) != Some(iss) {
            return Err(malformed("sub must equal iss (the service account)"));
        }
        let iat = v.iat.ok_or_else(|| malformed("iat is required"))?;
        let lifetime = v.exp.saturating_sub(iat);
        if lifetime > i64::try_from(MAX_CUSTOM_TOKEN_LIFETIME.as_secs()).unwrap_or(3600) {
            return Err(malformed(&format!(
                "it lives {lifetime} s (exp − iat); custom tokens live at most 3600 s"
            )));
        }
        let claims = match v.claims.get("claims") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(malformed("claims must be a JSON object")),
        };
        check_custom_claims(&claims).map_err(|e| malformed(&e))?;
        Ok(CustomTokenIdentity {
            uid: v.uid.clone(),
            signer: v.provider.clone(),
            claims,
            iat,
        })
    }
}
