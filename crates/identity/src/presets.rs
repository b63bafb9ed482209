//! Presets: the issuer, key source and (Firebase) audience of the well-known identity providers,
//! filled from one or two fields. Explicit `issuer`, key URLs and `audience` in the same table
//! override what a preset fills in; preset fields given without their preset are refused.
//!
//! This file knows URL shapes only; it never contacts a provider.

use crate::config::{FIREBASE_X509_URI, OneOrMany, Preset, ProviderConfig, TENANT_PLACEHOLDER};
use crate::error::ConfigError;

/// The fields a preset decides, after explicit overrides.
pub(crate) struct Filled {
    pub issuer: Option<String>,
    pub discovery: Option<String>,
    pub jwks_uri: Option<String>,
    pub x509_uri: Option<String>,
    pub audience: Option<OneOrMany>,
    pub additional_issuers: Vec<String>,
}

pub(crate) fn fill(c: &ProviderConfig) -> Result<Filled, ConfigError> {
    let name = c.name.as_str();
    let err = |m: String| ConfigError::invalid(name, m);
    let extra = [
        (
            "project_id",
            c.project_id.is_some(),
            [Preset::Firebase].as_slice(),
        ),
        ("domain", c.domain.is_some(), &[Preset::Auth0, Preset::Okta]),
        (
            "authorization_server",
            c.authorization_server.is_some(),
            &[Preset::Okta],
        ),
        ("tenant", c.tenant.is_some(), &[Preset::Entra]),
        ("realm_url", c.realm_url.is_some(), &[Preset::Keycloak]),
    ];
    for (field, present, allowed) in extra {
        if present && !c.preset.is_some_and(|p| allowed.contains(&p)) {
            return Err(err(format!(
                "{field} is only used with preset {}",
                preset_names(allowed)
            )));
        }
    }

    let mut f = Filled {
        issuer: None,
        discovery: None,
        jwks_uri: None,
        x509_uri: None,
        audience: None,
        additional_issuers: Vec::new(),
    };
    let required = |v: &Option<String>, field: &str, preset: &str| -> Result<String, ConfigError> {
        match v.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => Err(err(format!("preset {preset} needs {field}"))),
        }
    };
    match c.preset {
        None => {}
        Some(Preset::Firebase) => {
            let p = required(&c.project_id, "project_id", "firebase")?;
            if !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(err(format!(
                    "project_id {p:?} is not a Firebase project id"
                )));
            }
            f.issuer = Some(format!("https://securetoken.google.com/{p}"));
            f.x509_uri = Some(FIREBASE_X509_URI.to_owned());
            f.audience = Some(OneOrMany::One(p));
        }
        Some(Preset::Auth0) => {
            let d = host(&required(&c.domain, "domain", "auth0")?).map_err(err)?;
            f.issuer = Some(format!("https://{d}/"));
            f.jwks_uri = Some(format!("https://{d}/.well-known/jwks.json"));
        }
        Some(Preset::Okta) => {
            let d = host(&required(&c.domain, "domain", "okta")?).map_err(err)?;
            let server = c.authorization_server.as_deref().unwrap_or("default");
            let issuer = if server.is_empty() {
                format!("https://{d}")
            } else {
                format!("https://{d}/oauth2/{server}")
            };
            f.discovery = Some(format!("{issuer}/.well-known/openid-configuration"));
            f.issuer = Some(issuer);
        }
        Some(Preset::Keycloak) => {
            let realm = required(&c.realm_url, "realm_url", "keycloak")?;
            let realm = realm.trim_end_matches('/').to_owned();
            if !realm.contains("/realms/") {
                return Err(err(format!(
                    "realm_url {realm:?} should look like https://host/realms/<realm>"
                )));
            }
            f.discovery = Some(format!("{realm}/.well-known/openid-configuration"));
            f.issuer = Some(realm);
        }
        Some(Preset::Entra) => {
            let t = required(&c.tenant, "tenant", "entra")?;
            if !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(err(format!("tenant {t:?} is not a tenant id")));
            }
            let multi = matches!(t.as_str(), "organizations" | "common");
            let issuer_tenant = if multi {
                TENANT_PLACEHOLDER
            } else {
                t.as_str()
            };
            f.issuer = Some(format!(
                "https://login.microsoftonline.com/{issuer_tenant}/v2.0"
            ));
            f.jwks_uri = Some(format!(
                "https://login.microsoftonline.com/{t}/discovery/v2.0/keys"
            ));
        }
        Some(Preset::Google) => {
            f.issuer = Some("https://accounts.google.com".to_owned());
            f.additional_issuers = vec!["accounts.google.com".to_owned()];
            f.jwks_uri = Some("https://www.googleapis.com/oauth2/v3/certs".to_owned());
        }
    }

    // Explicit fields win. A key URL given explicitly replaces the preset's key source whatever
    // its kind, so a preset can be pointed at a mirror or a test server.
    if c.discovery.is_some() || c.jwks_uri.is_some() || c.x509_uri.is_some() {
        f.discovery = c.discovery.clone();
        f.jwks_uri = c.jwks_uri.clone();
        f.x509_uri = c.x509_uri.clone();
    }
    if c.issuer.is_some() {
        f.issuer = c.issuer.clone();
        f.additional_issuers.clear();
    }
    if let Some(a) = &c.additional_issuers {
        f.additional_issuers = a.clone();
    }
    if c.audience.is_some() {
        f.audience = c.audience.clone();
    }
    Ok(f)
}

fn host(domain: &str) -> Result<String, String> {
    let d = domain.trim_start_matches("https://").trim_end_matches('/');
    let ok = !d.is_empty()
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':');
    if ok {
        Ok(d.to_owned())
    } else {
        Err(format!("domain {domain:?} is not a host name"))
    }
}

fn preset_names(p: &[Preset]) -> String {
    let names: Vec<String> = p.iter().map(|p| format!("{p:?}").to_lowercase()).collect();
    names.join(" or ")
}
