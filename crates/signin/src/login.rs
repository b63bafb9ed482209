//! The OpenID Connect login client (authorization code flow with PKCE S256) for providers
//! configured with `client_id` / `client_secret`:
//!
//! 1. [`LoginClient::start`] checks the app redirect against `app_redirects`, makes a random
//!    `state`, `nonce`, PKCE verifier and a browser binding, stores them (hashed key, single
//!    use, 10 minutes) under `auth.login`, and returns the provider's authorization URL and the
//!    binding for the short-lived `claimdb_login` cookie.
//! 2. [`LoginClient::callback`] takes the state record (a second use, an unknown or expired
//!    state, another provider's state or another browser's are refused), checks the RFC 9207
//!    `iss` parameter when sent, exchanges the code at the token endpoint from the provider's
//!    discovery document with the client secret and the verifier, verifies the ID token with
//!    the shared [`Verifier`], then checks `aud`/`azp` against the client id, the `nonce`, and
//!    `at_hash` when present; it returns the verified identity and the app redirect.
//!
//! Nothing here puts a token in a URL: the authorization URL carries only public parameters,
//! and the code exchange is a POST. Creating the user record and the session cookie is the
//! caller's (see `session.rs`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use claimdb_identity::config::{IssuerMatch, ProviderConfig};
use claimdb_identity::io::{Fetcher, FormPoster};
use claimdb_identity::{ConfigError, FetchError, VerifiedToken, Verifier, VerifyError};
use claimdb_store::{RecordCondition, Store, StoreError};

use crate::records::{NS_LOGIN, RecordsError, random_token, secret_key, unix_millis};
use crate::redirect::RedirectPolicy;

/// A login attempt must complete within this long.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Discovery documents are reused for this long.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// Why a login failed. [`LoginError::reason`] is the stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    #[error("no login provider is named {0:?}")]
    UnknownProvider(String),
    #[error("the redirect {url:?} is refused: {why}")]
    RedirectRefused { url: String, why: String },
    #[error("the callback has no state parameter")]
    MissingState,
    #[error(
        "the login state is unknown: it was already used, has expired and been removed, or was never issued"
    )]
    UnknownState,
    #[error("the login state belongs to provider {expected:?}, not {got:?}")]
    StateMismatch { expected: String, got: String },
    #[error("the login attempt expired (logins must finish within {} minutes); start again", LOGIN_TTL.as_secs() / 60)]
    Expired,
    #[error("the login was started in another browser (the login cookie does not match)")]
    BrowserMismatch,
    #[error("the provider refused the login: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    ProviderDenied {
        error: String,
        description: Option<String>,
    },
    #[error("the callback has no code parameter")]
    MissingCode,
    #[error(
        "the callback's iss parameter {got:?} is not the provider's issuer {expected:?} (a mix-up attack?)"
    )]
    IssuerMismatch { expected: String, got: String },
    #[error("the provider's discovery document could not be used: {0}")]
    Discovery(String),
    #[error("the token endpoint refused the code: {0}")]
    TokenEndpoint(String),
    #[error("the ID token was refused: {0}")]
    IdToken(VerifyError),
    #[error("the ID token was issued by provider {got:?}, not {expected:?}")]
    WrongProvider { expected: String, got: String },
    #[error("the ID token is not for this client: {0}")]
    WrongClient(String),
    #[error(
        "the ID token's nonce does not match the one this login sent (a replayed or injected token)"
    )]
    NonceMismatch,
    #[error("the ID token's at_hash does not match the access token")]
    AtHashMismatch,
    #[error(transparent)]
    Storage(#[from] RecordsError),
}

impl From<StoreError> for LoginError {
    fn from(e: StoreError) -> Self {
        LoginError::Storage(e.into())
    }
}

impl LoginError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownProvider(_) => "unknown-provider",
            Self::RedirectRefused { .. } => "redirect-refused",
            Self::MissingState => "missing-state",
            Self::UnknownState => "unknown-state",
            Self::StateMismatch { .. } => "state-mismatch",
            Self::Expired => "login-expired",
            Self::BrowserMismatch => "browser-mismatch",
            Self::ProviderDenied { .. } => "provider-denied",
            Self::MissingCode => "missing-code",
            Self::IssuerMismatch { .. } => "issuer-mismatch",
            Self::Discovery(_) => "discovery-unavailable",
            Self::TokenEndpoint(_) => "token-endpoint",
            Self::IdToken(e) => e.reason(),
            Self::WrongProvider { .. } => "wrong-provider",
            Self::WrongClient(_) => "wrong-client",
            Self::NonceMismatch => "nonce-mismatch",
            Self::AtHashMismatch => "at-hash-mismatch",
            Self::Storage(_) => "storage-unavailable",
        }
    }

    /// True when the failure is on claimdb's or the provider's side, not the browser's.
    pub fn is_operational(&self) -> bool {
        matches!(
            self,
            Self::Discovery(_) | Self::TokenEndpoint(_) | Self::Storage(_)
        ) || matches!(self, Self::IdToken(e) if e.is_operational())
    }
}

/// What the login flow needs from outside.
#[derive(Clone)]
pub struct LoginDeps {
    /// The verifier that knows every login provider (the same one the request path uses).
    pub verifier: Arc<Verifier>,
    pub records: Arc<dyn Store>,
    pub fetcher: Arc<dyn Fetcher>,
    pub poster: Arc<dyn FormPoster>,
}

#[derive(Debug, Clone)]
struct LoginProvider {
    client_id: String,
    client_secret: String,
    scopes: Vec<String>,
    discovery_url: String,
    /// The issuer the discovery document must name (`None` for tenant templates).
    issuer: Option<String>,
}

#[derive(Debug, Clone)]
struct Discovered {
    issuer: Option<String>,
    authorization_endpoint: String,
    token_endpoint: String,
    basic_auth: bool,
    fetched_at: SystemTime,
}

/// The start of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStart {
    /// Where to send the browser (302).
    pub authorization_url: String,
    /// The value of the `claimdb_login` cookie to set (HttpOnly, SameSite=Lax, for
    /// [`LOGIN_TTL`]); the callback must present it.
    pub browser_binding: String,
}

/// The query parameters of the callback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207 issuer identification.
    pub iss: Option<String>,
}

impl CallbackParams {
    /// From decoded query pairs (a repeated parameter keeps the first).
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let get = |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        Self {
            state: get("state"),
            code: get("code"),
            error: get("error"),
            error_description: get("error_description"),
            iss: get("iss"),
        }
    }
}

/// A completed login.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub provider: String,
    pub token: Arc<VerifiedToken>,
    /// The allow-listed app URL to send the browser to.
    pub redirect: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct LoginRecord {
    provider: String,
    nonce: String,
    code_verifier: String,
    redirect: String,
    binding: String,
    expires_ms: i64,
}

/// The login client of all configured login providers.
pub struct LoginClient {
    public_url: String,
    redirects: RedirectPolicy,
    providers: HashMap<String, LoginProvider>,
    deps: LoginDeps,
    discovery: RwLock<HashMap<String, Discovered>>,
}

impl LoginClient {
    /// `providers` is the whole `[[providers]]` list; those with a `client_id` offer login and
    /// need a `client_secret` (the caller fills it from `CLAIMDB_PROVIDER_<NAME>_CLIENT_SECRET`
    /// first) and an audience that includes the client id.
    pub fn new(
        public_url: &str,
        app_redirects: &[String],
        providers: &[ProviderConfig],
        deps: LoginDeps,
    ) -> Result<LoginClient, ConfigError> {
        let public_url = crate::issuer::normalize_public_url(public_url)
            .map_err(|e| ConfigError::invalid("login", e.to_string()))?;
        let redirects =
            RedirectPolicy::new(app_redirects).map_err(|e| ConfigError::invalid("login", e))?;
        let mut out = HashMap::new();
        for c in providers.iter().filter(|c| c.client_id.is_some()) {
            let p = c.validate()?;
            let err = |m: &str| ConfigError::invalid(&p.name, m);
            let client_id = c.client_id.clone().unwrap_or_default();
            let client_secret = c
                .client_secret
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    err("login needs client_secret (or CLAIMDB_PROVIDER_<NAME>_CLIENT_SECRET)")
                })?;
            if client_id.is_empty() {
                return Err(err("client_id must not be empty"));
            }
            if !p.audiences.contains(&client_id) {
                return Err(err(
                    "for login, audience must include client_id (ID tokens are issued to the client)",
                ));
            }
            if deps.verifier.providers().all(|v| v.name != p.name) {
                return Err(err(
                    "the verifier given to login does not know this provider",
                ));
            }
            let (discovery_url, issuer) = match (&c.discovery, &p.issuer) {
                (Some(d), IssuerMatch::Exact(i)) => (d.clone(), Some(i.clone())),
                (Some(d), IssuerMatch::TenantTemplate { .. }) => (d.clone(), None),
                (None, IssuerMatch::Exact(i)) => (
                    format!(
                        "{}/.well-known/openid-configuration",
                        i.trim_end_matches('/')
                    ),
                    Some(i.clone()),
                ),
                (None, IssuerMatch::TenantTemplate { prefix, suffix }) => {
                    let tenant = c.tenant.clone().unwrap_or_else(|| "common".into());
                    (
                        format!("{prefix}{tenant}{suffix}/.well-known/openid-configuration"),
                        None,
                    )
                }
            };
            claimdb_identity::validate::check_key_url(&discovery_url).map_err(|m| err(&m))?;
            let scopes = c
                .scopes
                .clone()
                .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
            if !scopes.iter().any(|s| s == "openid") {
                return Err(err("scopes must include openid"));
            }
            out.insert(
                p.name.clone(),
                LoginProvider {
                    client_id,
                    client_secret,
                    scopes,
                    discovery_url,
                    issuer,
                },
            );
        }
        Ok(LoginClient {
            public_url,
            redirects,
            providers: out,
            deps,
            discovery: RwLock::new(HashMap::new()),
        })
    }

    /// The names of the providers that offer login.
    pub fn provider_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.providers.keys().cloned().collect();
        v.sort();
        v
    }

    /// `<public_url>/v1/login/<name>/callback`.
    pub fn callback_url(&self, provider: &str) -> String {
        format!("{}/v1/login/{provider}/callback", self.public_url)
    }

    /// The redirect policy (for the logout route's `?redirect=`).
    pub fn redirects(&self) -> &RedirectPolicy {
        &self.redirects
    }

    /// Starts a login; `app_redirect` `None` means the first allowed app URL.
    pub async fn start(
        &self,
        provider: &str,
        app_redirect: Option<&str>,
        now: SystemTime,
    ) -> Result<LoginStart, LoginError> {
        let p = self
            .providers
            .get(provider)
            .ok_or_else(|| LoginError::UnknownProvider(provider.to_owned()))?;
        let redirect = match app_redirect {
            Some(r) => self
                .redirects
                .check(r)
                .map_err(|why| LoginError::RedirectRefused {
                    url: r.chars().take(200).collect(),
                    why,
                })?,
            None => self
                .redirects
                .default_target()
                .ok_or_else(|| LoginError::RedirectRefused {
                    url: String::new(),
                    why: "no redirect given and app_redirects is empty".into(),
                })?,
        };
        let d = self.discovered(provider, p, now).await?;
        let state = random_token(32)?;
        let nonce = random_token(32)?;
        let code_verifier = random_token(32)?;
        let binding = random_token(32)?;
        let challenge = URL_SAFE_NO_PAD.encode(crate::records::sha256(&code_verifier));
        let rec = LoginRecord {
            provider: provider.to_owned(),
            nonce: nonce.clone(),
            code_verifier,
            redirect,
            binding: secret_key(&binding),
            expires_ms: unix_millis(now)
                .saturating_add(i64::try_from(LOGIN_TTL.as_millis()).unwrap_or(600_000)),
        };
        let value = serde_json::to_string(&rec)
            .map_err(|e| RecordsError(format!("cannot encode a login record: {e}")))?;
        if !self
            .deps
            .records
            .put_record(
                NS_LOGIN,
                &secret_key(&state),
                Some(value),
                RecordCondition::Absent,
            )
            .await?
        {
            return Err(RecordsError("a login state collided".into()).into());
        }
        let mut url = reqwest::Url::parse(&d.authorization_endpoint)
            .map_err(|e| LoginError::Discovery(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &p.client_id)
            .append_pair("redirect_uri", &self.callback_url(provider))
            .append_pair("scope", &p.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(LoginStart {
            authorization_url: url.to_string(),
            browser_binding: binding,
        })
    }

    /// Completes a login at `/v1/login/<provider>/callback`. `browser_binding` is the
    /// `claimdb_login` cookie's value.
    pub async fn callback(
        &self,
        provider: &str,
        params: &CallbackParams,
        browser_binding: Option<&str>,
        now: SystemTime,
    ) -> Result<LoginOutcome, LoginError> {
        let p = self
            .providers
            .get(provider)
            .ok_or_else(|| LoginError::UnknownProvider(provider.to_owned()))?;
        let state = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(LoginError::MissingState)?;
        // Single use: whatever happens next, this state is gone.
        let raw = self
            .deps
            .records
            .take_record(NS_LOGIN, &secret_key(state))
            .await?
            .ok_or(LoginError::UnknownState)?;
        let rec: LoginRecord = serde_json::from_str(&raw)
            .map_err(|e| RecordsError(format!("a stored login is not valid: {e}")))?;
        if rec.provider != provider {
            return Err(LoginError::StateMismatch {
                expected: rec.provider,
                got: provider.to_owned(),
            });
        }
        if unix_millis(now) >= rec.expires_ms {
            return Err(LoginError::Expired);
        }
        let bound = browser_binding.is_some_and(|b| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                secret_key(b).as_bytes(),
                rec.binding.as_bytes(),
            )
            .is_ok()
        });
        if !bound {
            return Err(LoginError::BrowserMismatch);
        }
        if let Some(error) = &params.error {
            return Err(LoginError::ProviderDenied {
                error: error.chars().take(100).collect(),
                description: params
                    .error_description
                    .as_ref()
                    .map(|d| d.chars().take(300).collect()),
            });
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(LoginError::MissingCode)?;
        let d = self.discovered(provider, p, now).await?;
        if let (Some(got), Some(expected)) = (&params.iss, &d.issuer)
            && got != expected
        {
            return Err(LoginError::IssuerMismatch {
                expected: expected.clone(),
                got: got.chars().take(200).collect(),
            });
        }
        let mut form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), self.callback_url(provider)),
            ("code_verifier".to_owned(), rec.code_verifier.clone()),
        ];
        let basic = if d.basic_auth {
            Some((p.client_id.as_str(), p.client_secret.as_str()))
        } else {
            form.push(("client_id".to_owned(), p.client_id.clone()));
            form.push(("client_secret".to_owned(), p.client_secret.clone()));
            None
        };
        let resp = self
            .deps
            .poster
            .post_form(&d.token_endpoint, &form, basic)
            .await
            .map_err(|e| LoginError::TokenEndpoint(e.to_string()))?;
        let body: Value = serde_json::from_slice(&resp.body).map_err(|_| {
            LoginError::TokenEndpoint(format!("HTTP {} with a body that is not JSON", resp.status))
        })?;
        if !(200..300).contains(&resp.status) {
            let err = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let desc = body
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(LoginError::TokenEndpoint(format!(
                "HTTP {}: {} {}",
                resp.status,
                err.chars().take(100).collect::<String>(),
                desc.chars().take(300).collect::<String>()
            )));
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| LoginError::TokenEndpoint("the answer has no id_token".into()))?;
        let token = self
            .deps
            .verifier
            .verify(id_token, now)
            .await
            .map_err(LoginError::IdToken)?;
        if token.provider != provider {
            return Err(LoginError::WrongProvider {
                expected: provider.to_owned(),
                got: token.provider.clone(),
            });
        }
        check_client(&token, &p.client_id)?;
        let nonce_ok = token
            .claims
            .get("nonce")
            .and_then(Value::as_str)
            .is_some_and(|n| {
                aws_lc_rs::constant_time::verify_slices_are_equal(
                    n.as_bytes(),
                    rec.nonce.as_bytes(),
                )
                .is_ok()
            });
        if !nonce_ok {
            return Err(LoginError::NonceMismatch);
        }
        if let Some(at_hash) = token.claims.get("at_hash") {
            let access = body.get("access_token").and_then(Value::as_str);
            let alg = claimdb_identity::jose::decode(id_token).ok().and_then(|d| {
                d.header
                    .get("alg")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            let ok = match (at_hash.as_str(), access, alg.as_deref()) {
                (Some(h), Some(a), Some(alg)) => left_half_hash(alg, a).is_some_and(|w| w == h),
                _ => false,
            };
            if !ok {
                return Err(LoginError::AtHashMismatch);
            }
        }
        Ok(LoginOutcome {
            provider: provider.to_owned(),
            token,
            redirect: rec.redirect,
        })
    }

    async fn discovered(
        &self,
        name: &str,
        p: &LoginProvider,
        now: SystemTime,
    ) -> Result<Discovered, LoginError> {
        if let Ok(m) = self.discovery.read()
            && let Some(d) = m.get(name)
            && now.duration_since(d.fetched_at).unwrap_or(Duration::ZERO) < DISCOVERY_TTL
        {
            return Ok(d.clone());
        }
        let doc = self
            .deps
            .fetcher
            .get(&p.discovery_url)
            .await
            .map_err(|e: FetchError| LoginError::Discovery(e.to_string()))?;
        let v: Value = serde_json::from_slice(&doc.body)
            .map_err(|e| LoginError::Discovery(format!("not JSON: {e}")))?;
        let issuer = v.get("issuer").and_then(Value::as_str).map(str::to_owned);
        if let Some(want) = &p.issuer
            && issuer.as_deref() != Some(want.as_str())
        {
            return Err(LoginError::Discovery(format!(
                "its issuer {issuer:?} is not the configured issuer {want:?}"
            )));
        }
        let endpoint = |field: &str| -> Result<String, LoginError> {
            let u = v
                .get(field)
                .and_then(Value::as_str)
                .ok_or_else(|| LoginError::Discovery(format!("it has no {field}")))?;
            claimdb_identity::validate::check_key_url(u)
                .map_err(|m| LoginError::Discovery(format!("{field}: {m}")))?;
            Ok(u.to_owned())
        };
        let methods: Vec<&str> = v
            .get("token_endpoint_auth_methods_supported")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // client_secret_basic is the default (RFC 8414); use post only when basic is not offered.
        let basic_auth = methods.is_empty() || methods.contains(&"client_secret_basic");
        let d = Discovered {
            issuer,
            authorization_endpoint: endpoint("authorization_endpoint")?,
            token_endpoint: endpoint("token_endpoint")?,
            basic_auth,
            fetched_at: now,
        };
        if let Ok(mut m) = self.discovery.write() {
            m.insert(name.to_owned(), d.clone());
        }
        Ok(d)
    }
}

/// OpenID Connect Core §3.1.3.7: `aud` contains the client id; with several audiences, or
/// whenever present, `azp` is the client id.
fn check_client(token: &VerifiedToken, client_id: &str) -> Result<(), LoginError> {
    let auds: Vec<&str> = match token.claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !auds.contains(&client_id) {
        return Err(LoginError::WrongClient(format!(
            "aud {auds:?} does not include the client id"
        )));
    }
    let azp = token.claims.get("azp").and_then(Value::as_str);
    if (auds.len() > 1 || azp.is_some()) && azp != Some(client_id) {
        return Err(LoginError::WrongClient(format!(
            "azp {azp:?} is not the client id"
        )));
    }
    Ok(())
}

/// `at_hash`: base64url of the left half of the hash of the access token, with the hash of
/// the ID token's algorithm (SHA-512 for EdDSA, as OpenID Connect's Ed25519 profile says).
fn left_half_hash(alg: &str, value: &str) -> Option<String> {
    use aws_lc_rs::digest;
    let algorithm = match alg {
        "RS256" | "PS256" | "ES256" => &digest::SHA256,
        "RS384" | "PS384" | "ES384" => &digest::SHA384,
        "RS512" | "PS512" | "EdDSA" => &digest::SHA512,
        _ => return None,
    };
    let d = digest::digest(algorithm, value.as_bytes());
    let bytes = d.as_ref();
    Some(URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_openid_example() {
        // OpenID Connect Core, Appendix A.3: access token and its at_hash (RS256).
        assert_eq!(
            left_half_hash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").as_deref(),
            Some("77QmUPtjPfzWtF2AnpK9RQ")
        );
        assert_eq!(left_half_hash("HS256", "x"), None);
    }

    #[test]
    fn callback_params_take_the_first_value() {
        let p = CallbackParams::from_pairs(&[
            ("state".into(), "a".into()),
            ("state".into(), "b".into()),
            ("code".into(), "c".into()),
        ]);
        assert_eq!(p.state.as_deref(), Some("a"));
        assert_eq!(p.code.as_deref(), Some("c"));
        assert_eq!(p.error, None);
    }
}
