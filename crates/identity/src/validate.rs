//! Validating the raw `[[providers]]` tables into [`Provider`]s: each table with its preset
//! applied (explicit fields win over what a preset fills in), names and issuers unique across
//! the list, issuer templates, key URLs (https, or http on loopback), audiences, algorithms and
//! role mappings.
//!
//! The types are `config`'s and the preset data `presets`'; this file joins the two, so neither
//! of them depends on the other. No IO.

use std::collections::HashSet;
use std::time::Duration;

use crate::alg::Alg;
use crate::config::{
    IssuerMatch, KeySource, OneOrMany, Provider, ProviderConfig, TENANT_PLACEHOLDER,
};
use crate::error::ConfigError;

/// Validates a whole `providers` list: each provider, unique names, no issuer routed twice.
pub fn validate_providers(configs: &[ProviderConfig]) -> Result<Vec<Provider>, ConfigError> {
    let mut names = HashSet::new();
    let mut out: Vec<Provider> = Vec::with_capacity(configs.len());
    for c in configs {
        let p = c.validate()?;
        if !names.insert(p.name.clone()) {
            return Err(ConfigError::DuplicateName(p.name));
        }
        for q in &out {
            let clash = if q.issuer == p.issuer {
                Some(p.issuer.display())
            } else {
                let mine = p.exact_issuers();
                q.exact_issuers()
                    .into_iter()
                    .find(|i| mine.contains(i))
                    .map(str::to_owned)
            };
            if let Some(issuer) = clash {
                return Err(ConfigError::DuplicateIssuer {
                    issuer,
                    first: q.name.clone(),
                    second: p.name.clone(),
                });
            }
        }
        out.push(p);
    }
    Ok(out)
}

impl ProviderConfig {
    /// Applies the preset, then checks every field.
    pub fn validate(&self) -> Result<Provider, ConfigError> {
        let name = self.name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::invalid(
                &self.name,
                "name must be non-empty and use only letters, digits, '-' and '_'",
            ));
        }
        let filled = crate::presets::fill(self)?;
        let err = |m: String| ConfigError::invalid(name, m);

        let issuer = filled
            .issuer
            .ok_or_else(|| err("issuer is required (or a preset)".into()))?;
        let issuer = parse_issuer(&issuer).map_err(err)?;

        let sources = [
            filled.discovery.map(KeySource::Discovery),
            filled.jwks_uri.map(KeySource::Jwks),
            filled.x509_uri.map(KeySource::X509),
        ];
        let mut sources = sources.into_iter().flatten();
        let keys = sources
            .next()
            .ok_or_else(|| err("one of discovery, jwks_uri or x509_uri is required".into()))?;
        if sources.next().is_some() {
            return Err(err(
                "give only one of discovery, jwks_uri and x509_uri".into()
            ));
        }
        check_key_url(keys.url()).map_err(err)?;
        if matches!(keys, KeySource::Discovery(_))
            && matches!(issuer, IssuerMatch::TenantTemplate { .. })
        {
            return Err(err(
                "a {tenantid} issuer template needs jwks_uri, not discovery".into(),
            ));
        }

        let audiences = match filled.audience {
            Some(OneOrMany::One(a)) => vec![a],
            Some(OneOrMany::Many(v)) => v,
            None => Vec::new(),
        };
        if audiences.is_empty() || audiences.iter().any(|a| a.is_empty()) {
            return Err(err(
                "audience is required (one non-empty string or a list of them); \
                 without it a token minted for any other app of the same IdP would be accepted"
                    .into(),
            ));
        }

        let algorithms = self.algorithms.clone().unwrap_or_else(|| vec![Alg::RS256]);
        if algorithms.is_empty() {
            return Err(err("algorithms must list at least one algorithm".into()));
        }
        let uid_claim = self.uid_claim.clone().unwrap_or_else(|| "sub".to_owned());
        if uid_claim.is_empty() {
            return Err(err("uid_claim must not be empty".into()));
        }
        let skew = self.clock_skew.unwrap_or(60);
        if skew > 600 {
            return Err(err(format!(
                "clock_skew is {skew} s; at most 600 s is allowed"
            )));
        }
        let additional_issuers = filled.additional_issuers;
        for a in &additional_issuers {
            if a.is_empty() || a.contains(TENANT_PLACEHOLDER) {
                return Err(err(format!(
                    "additional_issuers must be exact, non-empty issuers; {a:?} is not"
                )));
            }
        }
        let tenants = self.tenants.clone().unwrap_or_default();
        if !tenants.is_empty() && matches!(issuer, IssuerMatch::Exact(_)) {
            return Err(err(format!(
                "tenants is only used with an issuer containing {TENANT_PLACEHOLDER}"
            )));
        }
        for r in &self.roles {
            r.validate().map_err(&err)?;
        }
        Ok(Provider {
            name: name.to_owned(),
            issuer,
            additional_issuers,
            keys,
            audiences,
            algorithms,
            uid_claim,
            clock_skew: Duration::from_secs(skew),
            roles: self.roles.clone(),
            tenants,
            trusted_roles_claim: None,
        })
    }
}

fn parse_issuer(issuer: &str) -> Result<IssuerMatch, String> {
    if issuer.is_empty() {
        return Err("issuer must not be empty".into());
    }
    match issuer.matches(TENANT_PLACEHOLDER).count() {
        0 => Ok(IssuerMatch::Exact(issuer.to_owned())),
        1 => {
            let (prefix, suffix) = issuer
                .split_once(TENANT_PLACEHOLDER)
                .ok_or_else(|| "issuer template is malformed".to_owned())?;
            if !prefix.starts_with("https://") || !prefix.ends_with('/') {
                return Err(format!(
                    "issuer template {issuer:?} must be an https URL with {TENANT_PLACEHOLDER} as a whole path segment"
                ));
            }
            if !(suffix.is_empty() || suffix.starts_with('/')) {
                return Err(format!(
                    "issuer template {issuer:?}: {TENANT_PLACEHOLDER} must be a whole path segment"
                ));
            }
            Ok(IssuerMatch::TenantTemplate {
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
            })
        }
        _ => Err(format!(
            "issuer {issuer:?} may contain {TENANT_PLACEHOLDER} at most once"
        )),
    }
}

/// Key URLs must be https, except on loopback (local IdPs and tests).
pub fn check_key_url(url: &str) -> Result<(), String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("key URL {url:?} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "key URL {url:?} must use https (plain http is allowed only on loopback)"
        )),
    }
}
