//! Refresh tokens: opaque (32 random bytes, base64url), stored only as their SHA-256, expiring,
//! rotated on every use. Each sign-in starts a *family*; a token that was already used being
//! presented again means it leaked, so the whole family is revoked (RFC 6819 §5.2.2.3, OAuth 2.1
//! refresh-token rotation). All of a user's families can be revoked at once.
//!
//! Records (all JSON, times in Unix milliseconds):
//! - `auth.refresh` / SHA-256(token): `{uid, family, expires_ms, used_ms}`
//! - `auth.refresh_family` / family id: `{uid, provider, roles, claims, auth_time, issued_at,
//!   created_ms, expires_ms, revoked}` — what each refresh mints again
//! - `auth.refresh_user` / uid: `{valid_after_ms, expires_ms}` — families created before are dead
//!
//! Minting the ID token that goes with a refresh is the exchange's business (`exchange.rs`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use claimdb_store::{RecordCondition, Store, StoreError};

use crate::records::{
    NS_REFRESH, NS_REFRESH_FAMILY, NS_REFRESH_USER, RecordsError, random_token, secret_key,
    unix_millis,
};

/// Random bytes in a refresh token.
pub const REFRESH_TOKEN_BYTES: usize = 32;

/// What a refresh token stands for: the identity it re-mints tokens for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RefreshGrant {
    pub uid: String,
    /// The provider the user signed in with.
    pub provider: Option<String>,
    pub roles: Vec<String>,
    /// Claims carried from the sign-in (a custom token's developer claims), re-minted on
    /// every refresh; the user's stored custom claims are added by the caller each time.
    pub claims: Map<String, Value>,
    pub auth_time: Option<i64>,
    /// When the credential this sign-in began with was issued (its `iat`, Unix seconds; for
    /// families stored before this was recorded, when the family was created). A family is
    /// dead once the user's tokens issued at that time are revoked; the caller checks it on
    /// every refresh against the user's current revocation.
    pub issued_at: Option<i64>,
}

/// A newly issued refresh token (give `token` to the client; it is not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRefresh {
    pub token: String,
    pub expires_at: SystemTime,
    pub family: String,
}

/// Why a refresh token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    #[error("the refresh token is not known (never issued, or expired and removed)")]
    Unknown,
    #[error("the refresh token expired")]
    Expired,
    #[error(
        "the refresh token was already used; it may have been stolen, so every token of this sign-in is now revoked"
    )]
    Reused,
    #[error("the refresh token was revoked")]
    Revoked,
    #[error(transparent)]
    Storage(#[from] RecordsError),
}

impl RefreshError {
    /// Stable machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unknown => "unknown-refresh-token",
            Self::Expired => "expired",
            Self::Reused => "refresh-token-reused",
            Self::Revoked => "revoked",
            Self::Storage(_) => "storage-unavailable",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    uid: String,
    family: String,
    expires_ms: i64,
    used_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FamilyRecord {
    uid: String,
    provider: Option<String>,
    roles: Vec<String>,
    claims: Map<String, Value>,
    auth_time: Option<i64>,
    #[serde(default)]
    issued_at: Option<i64>,
    created_ms: i64,
    expires_ms: i64,
    revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserRecord {
    valid_after_ms: i64,
    expires_ms: i64,
}

impl From<StoreError> for RefreshError {
    fn from(e: StoreError) -> Self {
        RefreshError::Storage(e.into())
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, RecordsError> {
    serde_json::to_string(v).map_err(|e| RecordsError(format!("cannot encode a record: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, RecordsError> {
    serde_json::from_str(s).map_err(|e| RecordsError(format!("a stored record is not valid: {e}")))
}

/// Issues, rotates and revokes refresh tokens over the store's system records.
#[derive(Clone)]
pub struct RefreshTokens {
    records: Arc<dyn Store>,
    ttl: Duration,
}

impl RefreshTokens {
    pub fn new(records: Arc<dyn Store>, ttl: Duration) -> Self {
        Self { records, ttl }
    }

    fn expiry_ms(&self, now: SystemTime) -> i64 {
        unix_millis(now).saturating_add(i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX))
    }

    /// Starts a new family (a sign-in) and returns its first token.
    pub async fn issue(
        &self,
        grant: &RefreshGrant,
        now: SystemTime,
    ) -> Result<IssuedRefresh, RefreshError> {
        let family = random_token(16)?;
        let fam = FamilyRecord {
            uid: grant.uid.clone(),
            provider: grant.provider.clone(),
            roles: grant.roles.clone(),
            claims: grant.claims.clone(),
            auth_time: grant.auth_time,
            issued_at: grant.issued_at,
            created_ms: unix_millis(now),
            expires_ms: self.expiry_ms(now),
            revoked: false,
        };
        let created = self
            .records
            .put_record(
                NS_REFRESH_FAMILY,
                &family,
                Some(to_json(&fam)?),
                RecordCondition::Absent,
            )
            .await?;
        if !created {
            return Err(RecordsError("a refresh family id collided".into()).into());
        }
        self.new_token(&grant.uid, &family, now).await
    }

    async fn new_token(
        &self,
        uid: &str,
        family: &str,
        now: SystemTime,
    ) -> Result<IssuedRefresh, RefreshError> {
        let token = random_token(REFRESH_TOKEN_BYTES)?;
        let expires_ms = self.expiry_ms(now);
        let rec = TokenRecord {
            uid: uid.to_owned(),
            family: family.to_owned(),
            expires_ms,
            used_ms: None,
        };
        let stored = self
            .records
            .put_record(
                NS_REFRESH,
                &secret_key(&token),
                Some(to_json(&rec)?),
                RecordCondition::Absent,
            )
            .await?;
        if !stored {
            return Err(RecordsError("a refresh token collided".into()).into());
        }
        Ok(IssuedRefresh {
            token,
            expires_at: crate::signing::to_time(expires_ms / 1000),
            family: family.to_owned(),
        })
    }

    /// Uses a refresh token: marks it used and returns what it stands for with its successor.
    /// A second use of any token revokes its whole family.
    pub async fn redeem(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<(RefreshGrant, IssuedRefresh), RefreshError> {
        // Anything that is not one of ours is refused before touching storage.
        if token.len() != 43
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(RefreshError::Unknown);
        }
        let key = secret_key(token);
        let Some(raw) = self.records.get_record(NS_REFRESH, &key).await? else {
            return Err(RefreshError::Unknown);
        };
        let rec: TokenRecord = from_json(&raw)?;
        let now_ms = unix_millis(now);
        if rec.used_ms.is_some() {
            self.revoke_family(&rec.family).await?;
            return Err(RefreshError::Reused);
        }
        if now_ms >= rec.expires_ms {
            return Err(RefreshError::Expired);
        }
        let Some(fam_raw) = self
            .records
            .get_record(NS_REFRESH_FAMILY, &rec.family)
            .await?
        else {
            return Err(RefreshError::Revoked);
        };
        let fam: FamilyRecord = from_json(&fam_raw)?;
        if fam.revoked {
            return Err(RefreshError::Revoked);
        }
        if let Some(user) = self.records.get_record(NS_REFRESH_USER, &fam.uid).await? {
            let user: UserRecord = from_json(&user)?;
            if fam.created_ms <= user.valid_after_ms {
                return Err(RefreshError::Revoked);
            }
        }
        let used = TokenRecord {
            used_ms: Some(now_ms),
            ..rec.clone()
        };
        let marked = self
            .records
            .put_record(
                NS_REFRESH,
                &key,
                Some(to_json(&used)?),
                RecordCondition::Equals(raw),
            )
            .await?;
        if !marked {
            // Someone used it between our read and our write: a replay race.
            self.revoke_family(&rec.family).await?;
            return Err(RefreshError::Reused);
        }
        let next = self.new_token(&rec.uid, &rec.family, now).await?;
        self.update_family(&rec.family, |f| {
            f.expires_ms = f.expires_ms.max(self.expiry_ms(now))
        })
        .await?;
        let grant = RefreshGrant {
            uid: fam.uid,
            provider: fam.provider,
            roles: fam.roles,
            claims: fam.claims,
            auth_time: fam.auth_time,
            issued_at: Some(fam.issued_at.unwrap_or(fam.created_ms.div_euclid(1000))),
        };
        Ok((grant, next))
    }

    async fn update_family(
        &self,
        family: &str,
        f: impl Fn(&mut FamilyRecord),
    ) -> Result<(), RefreshError> {
        for _ in 0..16 {
            let Some(raw) = self.records.get_record(NS_REFRESH_FAMILY, family).await? else {
                return Ok(());
            };
            let mut fam: FamilyRecord = from_json(&raw)?;
            f(&mut fam);
            if self
                .records
                .put_record(
                    NS_REFRESH_FAMILY,
                    family,
                    Some(to_json(&fam)?),
                    RecordCondition::Equals(raw),
                )
                .await?
            {
                return Ok(());
            }
        }
        Err(RecordsError("a refresh family kept changing under an update".into()).into())
    }

    async fn revoke_family(&self, family: &str) -> Result<(), RefreshError> {
        tracing::warn!(family, "refresh token reuse: revoking the token family");
        self.update_family(family, |f| f.revoked = true).await
    }

    /// Revokes the family of `token` (sign-out); unknown tokens are ignored.
    pub async fn revoke(&self, token: &str) -> Result<(), RefreshError> {
        let Some(raw) = self
            .records
            .get_record(NS_REFRESH, &secret_key(token))
            .await?
        else {
            return Ok(());
        };
        let rec: TokenRecord = from_json(&raw)?;
        self.update_family(&rec.family, |f| f.revoked = true).await
    }

    /// Revokes every refresh token of `uid` issued up to `now`.
    pub async fn revoke_user(&self, uid: &str, now: SystemTime) -> Result<(), RefreshError> {
        let rec = UserRecord {
            valid_after_ms: unix_millis(now),
            expires_ms: self.expiry_ms(now),
        };
        self.records
            .put_record(
                NS_REFRESH_USER,
                uid,
                Some(to_json(&rec)?),
                RecordCondition::Any,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::test_store;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn setup() -> (Arc<dyn Store>, RefreshTokens, tempfile::TempDir) {
        let (r, dir) = test_store();
        let rt = RefreshTokens::new(r.clone(), Duration::from_secs(30 * 86_400));
        (r, rt, dir)
    }

    fn grant() -> RefreshGrant {
        RefreshGrant {
            uid: "alice".into(),
            provider: Some("auth0".into()),
            roles: vec!["admin".into()],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn tokens_are_opaque_and_stored_hashed() {
        let (r, rt, _dir) = setup();
        let a = rt.issue(&grant(), t(0)).await.unwrap();
        assert_eq!(a.token.len(), 43);
        let stored = r.list_records(NS_REFRESH, None, 10).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].0.contains(&a.token) && !stored[0].1.contains(&a.token));
    }

    #[tokio::test]
    async fn rotation_and_reuse_revokes_the_family() {
        let (_, rt, _dir) = setup();
        let a = rt.issue(&grant(), t(0)).await.unwrap();
        let other = rt.issue(&grant(), t(0)).await.unwrap();
        let (g, b) = rt.redeem(&a.token, t(10)).await.unwrap();
        // A family stored without the sign-in's `iat` counts from its creation.
        let created = Some(1_800_000_000);
        assert_eq!(
            g,
            RefreshGrant {
                issued_at: created,
                ..grant()
            }
        );
        let with_iat = RefreshGrant {
            issued_at: Some(1_700_000_000),
            ..grant()
        };
        let c = rt.issue(&with_iat, t(0)).await.unwrap();
        assert_eq!(rt.redeem(&c.token, t(10)).await.unwrap().0, with_iat);
        assert_ne!(a.token, b.token);
        // The attacker replays the first token: refused, and the family dies with it.
        assert_eq!(
            rt.redeem(&a.token, t(20)).await.unwrap_err(),
            RefreshError::Reused
        );
        assert_eq!(
            rt.redeem(&b.token, t(30)).await.unwrap_err(),
            RefreshError::Revoked
        );
        // Another sign-in of the same user is untouched.
        assert!(rt.redeem(&other.token, t(40)).await.is_ok());
    }

    #[tokio::test]
    async fn expiry_unknown_and_user_revocation() {
        let (_, rt, _dir) = setup();
        let a = rt.issue(&grant(), t(0)).await.unwrap();
        assert_eq!(
            rt.redeem(&a.token, t(30 * 86_400)).await.unwrap_err(),
            RefreshError::Expired
        );
        assert_eq!(
            rt.redeem("nope", t(0)).await.unwrap_err(),
            RefreshError::Unknown
        );
        let forged = "A".repeat(43);
        assert_eq!(
            rt.redeem(&forged, t(0)).await.unwrap_err(),
            RefreshError::Unknown
        );
        let b = rt.issue(&grant(), t(100)).await.unwrap();
        rt.revoke_user("alice", t(200)).await.unwrap();
        assert_eq!(
            rt.redeem(&b.token, t(300)).await.unwrap_err(),
            RefreshError::Revoked
        );
        // A sign-in after the revocation works.
        let c = rt.issue(&grant(), t(400)).await.unwrap();
        assert!(rt.redeem(&c.token, t(500)).await.is_ok());
        // Sign-out revokes one family.
        let d = rt.issue(&grant(), t(600)).await.unwrap();
        rt.revoke(&d.token).await.unwrap();
        assert_eq!(
            rt.redeem(&d.token, t(700)).await.unwrap_err(),
            RefreshError::Revoked
        );
    }

    #[tokio::test]
    async fn concurrent_redeems_of_one_token_yield_one_winner() {
        let (_, rt, _dir) = setup();
        let a = rt.issue(&grant(), t(0)).await.unwrap();
        let (x, y) = tokio::join!(rt.redeem(&a.token, t(1)), rt.redeem(&a.token, t(1)));
        assert_eq!(u8::from(x.is_ok()) + u8::from(y.is_ok()), 1);
    }
}
