//! The OAuth grants of `POST /v1/token` as library calls: RFC 8693 token exchange (a configured
//! provider's token, or a Firebase-format custom token from a configured signer, becomes a
//! claimdb ID token + refresh token) and the `refresh_token` grant (rotation, reuse detection).
//! Answers are the OAuth token response ([`TokenResponse`]) or an OAuth error ([`OAuthError`],
//! RFC 6749 §5.2 codes), both serializable as the RFC shapes them.
//!
//! The server parses the form body into a [`Grant`], calls [`TokenService::grant`], and picks
//! the HTTP status of an [`OAuthError`] from its code. This file knows nothing of HTTP.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

use claimdb_identity::claim_names::{ISSUER_PROVIDER_NAME, reserved_for_minting};
use claimdb_identity::{Verifier, VerifyError};

use crate::custom_token::CustomTokens;
use crate::error::IssuerError;
pub use crate::issuer::GRANT_TOKEN_EXCHANGE;
use crate::issuer::{Issuer, MintRequest};
use crate::refresh::{RefreshError, RefreshGrant, RefreshTokens};

/// The refresh grant type.
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// Subject token types accepted (RFC 8693 §3).
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// Profile claims copied from a provider's token into claimdb's when present.
pub const CARRIED_PROFILE_CLAIMS: &[&str] = &["email", "email_verified", "name", "picture"];

/// A parsed `POST /v1/token` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    RefreshToken {
        refresh_token: String,
    },
    TokenExchange {
        subject_token: String,
        subject_token_type: String,
    },
}

/// The successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1). `access_token` and
/// `id_token` are the same claimdb ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub issued_token_type: &'static str,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    pub id_token: String,
}

/// RFC 6749 §5.2 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidGrant,
    UnsupportedGrantType,
    ServerError,
    TemporarilyUnavailable,
}

/// An OAuth error response: `{"error": "invalid_grant", "error_description": "…"}`, plus
/// claimdb's stable `reason` when a token was refused (the verifier's reason code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error:?}: {error_description}")]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    pub error_description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl OAuthError {
    pub fn invalid_request(description: String) -> Self {
        Self {
            error: OAuthErrorCode::InvalidRequest,
            error_description: description,
            reason: None,
        }
    }

    fn invalid_grant(description: String, reason: &'static str) -> Self {
        Self {
            error: OAuthErrorCode::InvalidGrant,
            error_description: description,
            reason: Some(reason),
        }
    }

    fn server(description: String) -> Self {
        Self {
            error: OAuthErrorCode::ServerError,
            error_description: description,
            reason: None,
        }
    }
}

impl From<VerifyError> for OAuthError {
    fn from(e: VerifyError) -> Self {
        if e.is_operational() {
            Self {
                error: OAuthErrorCode::TemporarilyUnavailable,
                error_description: e.to_string(),
                reason: Some(e.reason()),
            }
        } else {
            Self::invalid_grant(format!("the subject token was refused: {e}"), e.reason())
        }
    }
}

impl From<RefreshError> for OAuthError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Storage(s) => Self::server(s.to_string()),
            other => Self::invalid_grant(other.to_string(), other.reason()),
        }
    }
}

impl From<IssuerError> for OAuthError {
    fn from(e: IssuerError) -> Self {
        match e {
            IssuerError::InvalidRequest(m) => Self::invalid_grant(m, "invalid-claims"),
            other => Self::server(other.to_string()),
        }
    }
}

/// A verified identity, ready to be turned into claimdb tokens.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subject {
    pub uid: String,
    /// The provider (or custom-token signer) that vouched for it.
    pub provider: String,
    pub roles: Vec<String>,
    /// Claims carried into claimdb's token (profile claims, developer claims).
    pub carried: Map<String, Value>,
    pub auth_time: Option<i64>,
    /// The subject token's `iat` (Unix seconds), checked against the user's revocation.
    pub issued_at: Option<i64>,
}

/// What claimdb keeps about a user that decides what it issues for them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserState {
    /// The custom claims set through the admin API, minted into the user's tokens.
    pub custom_claims: Map<String, Value>,
    /// Unix seconds: credentials issued before this second are revoked.
    pub tokens_valid_after: Option<i64>,
}

/// Where the token grants look users up (the store's user records, in the engine).
#[async_trait]
pub trait Users: Send + Sync {
    /// The user's current state.
    async fn state(&self, uid: &str) -> Result<UserState, String>;

    /// Notes a sign-in by token exchange (the engine creates the user's record) and returns
    /// the user's state. By default only looks the state up.
    async fn signed_in(&self, subject: &Subject) -> Result<UserState, String> {
        self.state(&subject.uid).await
    }
}

/// No stored custom claims, no revocations.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUsers;

#[async_trait]
impl Users for NoUsers {
    async fn state(&self, _: &str) -> Result<UserState, String> {
        Ok(UserState::default())
    }
}

/// Runs the token grants.
#[derive(Clone)]
pub struct TokenService {
    issuer: Arc<Issuer>,
    verifier: Arc<Verifier>,
    custom: Option<Arc<CustomTokens>>,
    refresh: RefreshTokens,
}

impl TokenService {
    /// `verifier` verifies providers' tokens (it may include claimdb's own provider; such
    /// tokens are refused as subject tokens); `custom` the configured custom-token signers.
    pub fn new(
        issuer: Arc<Issuer>,
        verifier: Arc<Verifier>,
        custom: Option<Arc<CustomTokens>>,
        refresh: RefreshTokens,
    ) -> Self {
        Self {
            issuer,
            verifier,
            custom,
            refresh,
        }
    }

    pub fn refresh_tokens(&self) -> &RefreshTokens {
        &self.refresh
    }

    /// Runs a grant end to end, looking the user up through `users`.
    ///
    /// A revoked user gets nothing: the credential the grant presents (the subject token, or
    /// the sign-in a refresh token belongs to) must have been issued at or after the user's
    /// `tokens_valid_after`. The check runs before minting and once more after, so a
    /// revocation that lands while the grant runs is not outlived by what it minted (the
    /// refresh family is revoked and the answer is an error).
    pub async fn grant(
        &self,
        grant: &Grant,
        users: &dyn Users,
        now: SystemTime,
    ) -> Result<TokenResponse, OAuthError> {
        let (uid, issued_at, response) = match grant {
            Grant::TokenExchange {
                subject_token,
                subject_token_type,
            } => {
                let subject = self
                    .verify_subject(subject_token, subject_token_type, now)
                    .await?;
                let state = users
                    .signed_in(&subject)
                    .await
                    .map_err(|e| OAuthError::server(format!("the user's record: {e}")))?;
                check_not_revoked(subject.issued_at, &state)?;
                let response = self.issue(&subject, &state.custom_claims, now).await?;
                (subject.uid, subject.issued_at, response)
            }
            Grant::RefreshToken { refresh_token } => {
                let (grant, next) = self.refresh.redeem(refresh_token, now).await?;
                let state = lookup(users, &grant.uid).await?;
                if let Err(e) = check_not_revoked(grant.issued_at, &state) {
                    self.refresh.revoke(&next.token).await?;
                    return Err(e);
                }
                let minted = self.mint(&grant, &state.custom_claims, now)?;
                (
                    grant.uid,
                    grant.issued_at,
                    self.response(minted, next.token),
                )
            }
        };
        if let Err(e) = check_not_revoked(issued_at, &lookup(users, &uid).await?) {
            self.refresh.revoke(&response.refresh_token).await?;
            return Err(e);
        }
        Ok(response)
    }

    /// Verifies an RFC 8693 subject token: a custom token when its `iss` is a configured
    /// signer, otherwise a configured provider's token through the verifier.
    pub async fn verify_subject(
        &self,
        subject_token: &str,
        subject_token_type: &str,
        now: SystemTime,
    ) -> Result<Subject, OAuthError> {
        if subject_token_type != TOKEN_TYPE_JWT && subject_token_type != TOKEN_TYPE_ID_TOKEN {
            return Err(OAuthError::invalid_request(format!(
                "subject_token_type must be {TOKEN_TYPE_JWT} or {TOKEN_TYPE_ID_TOKEN}"
            )));
        }
        // The issuer decides which verifier; the signature is checked by that verifier.
        let iss = claimdb_identity::jose::decode(subject_token)
            .map_err(OAuthError::from)?
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_default();
        if let Some(custom) = &self.custom
            && custom.is_signer(&iss)
        {
            let c = custom.verify(subject_token, now).await?;
            return Ok(Subject {
                uid: c.uid,
                provider: c.signer,
                roles: Vec::new(),
                carried: c.claims,
                auth_time: Some(c.iat),
                issued_at: Some(c.iat),
            });
        }
        let v = self.verifier.verify(subject_token, now).await?;
        if v.provider == ISSUER_PROVIDER_NAME {
            return Err(OAuthError::invalid_grant(
                "claimdb's own tokens cannot be exchanged; use the refresh_token grant".into(),
                "own-token",
            ));
        }
        let mut carried = Map::new();
        for name in CARRIED_PROFILE_CLAIMS {
            if let Some(val) = v.claims.get(*name) {
                carried.insert((*name).to_owned(), val.clone());
            }
        }
        Ok(Subject {
            uid: v.uid.clone(),
            provider: v.provider.clone(),
            roles: v.roles.clone(),
            carried,
            auth_time: v.claims.get("auth_time").and_then(Value::as_i64).or(v.iat),
            issued_at: v.iat,
        })
    }

    /// Mints an ID token for `subject` with the user's `custom_claims` and starts a new
    /// refresh-token family (a sign-in).
    pub async fn issue(
        &self,
        subject: &Subject,
        custom_claims: &Map<String, Value>,
        now: SystemTime,
    ) -> Result<TokenResponse, OAuthError> {
        let grant = RefreshGrant {
            uid: subject.uid.clone(),
            provider: Some(subject.provider.clone()),
            roles: subject.roles.clone(),
            claims: subject.carried.clone(),
            auth_time: subject.auth_time,
            issued_at: subject.issued_at,
        };
        // Mint first: a subject whose claims cannot be minted gets no refresh token.
        let minted = self.mint(&grant, custom_claims, now)?;
        let refresh = self.refresh.issue(&grant, now).await?;
        Ok(self.response(minted, refresh.token))
    }

    fn mint(
        &self,
        grant: &RefreshGrant,
        custom: &Map<String, Value>,
        now: SystemTime,
    ) -> Result<crate::issuer::Minted, OAuthError> {
        let carried: Map<String, Value> = grant
            .claims
            .iter()
            .filter(|(k, _)| !reserved_for_minting(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let req = MintRequest {
            uid: grant.uid.clone(),
            claims: custom.clone(),
            carried,
            ttl: None,
            roles: grant.roles.clone(),
            provider: grant.provider.clone(),
            audience: None,
            auth_time: grant.auth_time,
            claims_are_stored: true,
        };
        Ok(self.issuer.mint(&req, now)?)
    }

    fn response(&self, minted: crate::issuer::Minted, refresh_token: String) -> TokenResponse {
        TokenResponse {
            access_token: minted.token.clone(),
            issued_token_type: TOKEN_TYPE_ID_TOKEN,
            token_type: "Bearer",
            expires_in: u64::try_from(minted.exp.saturating_sub(minted.iat)).unwrap_or(0),
            refresh_token,
            id_token: minted.token,
        }
    }
}

async fn lookup(users: &dyn Users, uid: &str) -> Result<UserState, OAuthError> {
    users
        .state(uid)
        .await
        .map_err(|e| OAuthError::server(format!("the user's record could not be read: {e}")))
}

/// Refuses a credential issued (Unix seconds) before the user's `tokens_valid_after`.
fn check_not_revoked(issued_at: Option<i64>, state: &UserState) -> Result<(), OAuthError> {
    match state.tokens_valid_after {
        Some(after) => claimdb_identity::check_not_revoked(issued_at, after).map_err(|e| {
            OAuthError::invalid_grant(
                format!("the user's tokens were revoked; sign in again ({e})"),
                e.reason(),
            )
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialize_as_rfc6749_says() {
        let e = OAuthError::invalid_grant("nope".into(), "expired");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"error": "invalid_grant", "error_description": "nope", "reason": "expired"})
        );
    }
}
