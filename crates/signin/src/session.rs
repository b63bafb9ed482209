//! Browser sessions after a login: an opaque random id (the `claimdb_session` cookie's value)
//! stored only as its SHA-256 under `auth.session`, with the identity it stands for and an
//! expiry. Lookup, end (logout), and whether the cookies carrying sessions must be `Secure`
//! ([`cookies_need_secure`]); the cookie names and `Set-Cookie` values are the server's.
//!
//! Whether a session is still honoured after a user's revocation is the engine's call: it
//! compares [`Session::created`] with the user's `tokens_valid_after`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use claimdb_store::{RecordCondition, Store};

use crate::records::{NS_SESSION, RecordsError, random_token, secret_key, unix_millis};

/// Who a session is for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionIdentity {
    pub uid: String,
    pub provider: String,
    pub roles: Vec<String>,
    /// The verified ID token's claims (for `request.auth.token`).
    pub claims: Map<String, Value>,
}

/// A live session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub identity: SessionIdentity,
    pub created: SystemTime,
    pub expires: SystemTime,
}

/// A new session: put `id` in the cookie; it is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id: String,
    pub expires: SystemTime,
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionRecord {
    uid: String,
    provider: String,
    roles: Vec<String>,
    claims: Map<String, Value>,
    created_ms: i64,
    expires_ms: i64,
}

fn time_ms(ms: i64) -> SystemTime {
    u64::try_from(ms).map_or(SystemTime::UNIX_EPOCH, |m| {
        SystemTime::UNIX_EPOCH + Duration::from_millis(m)
    })
}

/// Sessions over the store's system records.
#[derive(Clone)]
pub struct Sessions {
    records: Arc<dyn Store>,
    ttl: Duration,
}

impl Sessions {
    pub fn new(records: Arc<dyn Store>, ttl: Duration) -> Self {
        Self { records, ttl }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Creates a session; the returned id goes into the cookie.
    pub async fn create(
        &self,
        identity: &SessionIdentity,
        now: SystemTime,
    ) -> Result<NewSession, RecordsError> {
        let id = random_token(32)?;
        let created_ms = unix_millis(now);
        let expires_ms =
            created_ms.saturating_add(i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX));
        let rec = SessionRecord {
            uid: identity.uid.clone(),
            provider: identity.provider.clone(),
            roles: identity.roles.clone(),
            claims: identity.claims.clone(),
            created_ms,
            expires_ms,
        };
        let value = serde_json::to_string(&rec)
            .map_err(|e| RecordsError(format!("cannot encode a session: {e}")))?;
        if !self
            .records
            .put_record(
                NS_SESSION,
                &secret_key(&id),
                Some(value),
                RecordCondition::Absent,
            )
            .await?
        {
            return Err(RecordsError("a session id collided".into()));
        }
        Ok(NewSession {
            id,
            expires: time_ms(expires_ms),
        })
    }

    /// The session a cookie value names, if it exists and has not expired.
    pub async fn get(&self, id: &str, now: SystemTime) -> Result<Option<Session>, RecordsError> {
        if id.len() != 43 {
            return Ok(None);
        }
        let key = secret_key(id);
        let Some(raw) = self.records.get_record(NS_SESSION, &key).await? else {
            return Ok(None);
        };
        let rec: SessionRecord = serde_json::from_str(&raw)
            .map_err(|e| RecordsError(format!("a stored session is not valid: {e}")))?;
        if unix_millis(now) >= rec.expires_ms {
            self.records
                .put_record(NS_SESSION, &key, None, RecordCondition::Equals(raw))
                .await?;
            return Ok(None);
        }
        Ok(Some(Session {
            identity: SessionIdentity {
                uid: rec.uid,
                provider: rec.provider,
                roles: rec.roles,
                claims: rec.claims,
            },
            created: time_ms(rec.created_ms),
            expires: time_ms(rec.expires_ms),
        }))
    }

    /// Ends a session (logout); returns whether there was one.
    pub async fn end(&self, id: &str) -> Result<bool, RecordsError> {
        Ok(self
            .records
            .take_record(NS_SESSION, &secret_key(id))
            .await?
            .is_some())
    }
}

/// Whether claimdb's cookies carry `Secure` for `public_url`: always, except when it is plain
/// http on a loopback host (`localhost`, 127.0.0.0/8, `[::1]`) — a dev instance, where the
/// browser talks to claimdb without TLS. The scheme and host are compared as parsed (any
/// case), and anything that does not parse gets `Secure` too.
pub fn cookies_need_secure(public_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(public_url) else {
        return true;
    };
    // The parser lowercases host names and normalizes addresses (`127.1` is 127.0.0.1).
    let host = url.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !(url.scheme() == "http" && loopback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::test_store;

    #[tokio::test]
    async fn sessions_live_expire_and_end() {
        let (r, _dir) = test_store();
        let s = Sessions::new(r.clone(), Duration::from_secs(3600));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ident = SessionIdentity {
            uid: "alice".into(),
            provider: "kc".into(),
            ..Default::default()
        };
        let a = s.create(&ident, t0).await.unwrap();
        let stored = r.list_records(NS_SESSION, None, 10).await.unwrap();
        assert!(!stored[0].0.contains(&a.id), "the id is stored hashed");
        let got = s
            .get(&a.id, t0 + Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.identity, ident);
        assert_eq!(s.get(&"x".repeat(43), t0).await.unwrap(), None);
        assert_eq!(
            s.get(&a.id, t0 + Duration::from_secs(3600)).await.unwrap(),
            None
        );
        assert!(
            r.list_records(NS_SESSION, None, 10)
                .await
                .unwrap()
                .is_empty(),
            "an expired session is removed on sight"
        );
        let b = s.create(&ident, t0).await.unwrap();
        assert!(s.end(&b.id).await.unwrap());
        assert!(!s.end(&b.id).await.unwrap());
        assert_eq!(s.get(&b.id, t0).await.unwrap(), None);
    }

    /// Regression: `Secure` was decided by `public_url.starts_with("https://")`, so a public URL
    /// written `HTTPS://…` (which the configuration accepts) sent session cookies without it.
    #[test]
    fn cookies_are_secure_unless_plain_http_on_loopback() {
        for url in [
            "https://db.example.com",
            "HTTPS://DB.example.com",
            "Https://db.example.com:8443/",
            "http://db.example.com",
            "http://10.0.0.5:8787",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
            "not a url",
            "",
        ] {
            assert!(cookies_need_secure(url), "{url}");
        }
        for url in [
            "http://127.0.0.1:8787",
            "HTTP://127.0.0.1:8787",
            "http://127.1.2.3",
            "http://localhost:8787",
            "http://LOCALHOST",
            "http://[::1]:8787",
        ] {
            assert!(!cookies_need_secure(url), "{url}");
        }
    }
}
