//! Cookies and cross-site request forgery: reading a cookie from the `Cookie` headers, and the
//! origin check a cookie-authenticated request must pass when it is not a GET or HEAD — its
//! `Origin` (or, without one, its `Referer`) must be claimdb's public URL's origin or one of
//! `app_redirects`' origins. A bearer token needs no such check: a browser never attaches one
//! by itself. SameSite=Lax already keeps the cookie off cross-site POSTs; this also covers
//! same-site origins (a sibling subdomain) and browsers that ignore SameSite.
//!
//! The same trusted origins get CORS with credentials ([`crate::cors`]); the app origins of
//! `cors_origins` get CORS without credentials and are deliberately not trusted here, so a
//! cookie-authenticated write from one of them is refused like any other origin's.

use axum::http::{HeaderMap, StatusCode, Uri, header};

use crate::error::ApiError;

/// The origins (`scheme://host[:port]`, lowercase, default port omitted) allowed to send
/// cookie-authenticated writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedOrigins(Vec<String>);

impl TrustedOrigins {
    /// From the public URL and the app redirect URLs (entries that are not http(s) URLs are
    /// skipped; configuration validated them already).
    pub fn from_urls<'a>(urls: impl IntoIterator<Item = &'a str>) -> TrustedOrigins {
        let mut list: Vec<String> = Vec::new();
        for u in urls {
            if let Some(o) = origin_of(u)
                && !list.contains(&o)
            {
                list.push(o);
            }
        }
        TrustedOrigins(list)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Refuses (403) a request whose `Origin`, or `Referer` when there is no `Origin`, is not
    /// a trusted origin; a request with neither is refused too.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let (seen, from) = match (text(header::ORIGIN), text(header::REFERER)) {
            (Some(o), _) => (origin_of(o), "Origin"),
            (None, Some(r)) => (origin_of(r), "Referer"),
            (None, None) => {
                return Err(refused(
                    "a request authenticated by the session cookie must carry an Origin or Referer header naming a trusted origin",
                ));
            }
        };
        match seen {
            Some(o) if self.0.contains(&o) => Ok(()),
            Some(o) => Err(refused(&format!(
                "the {from} {o} is not a trusted origin for requests authenticated by the session cookie (trusted: {}); send a bearer token, or list the app in app_redirects",
                self.0.join(", ")
            ))),
            None => Err(refused(&format!(
                "the {from} header is not an http(s) origin; requests authenticated by the session cookie must come from a trusted origin"
            ))),
        }
    }
}

fn refused(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "permission-denied", message)
        .with_detail("reason", "cross-origin-request".into())
}

/// `scheme://host[:port]` of an absolute http(s) URL (or of an `Origin` value), lowercase,
/// with the scheme's default port left out; `None` for anything else (including `null`).
pub fn origin_of(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = uri.authority()?;
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some(match authority.port_u16() {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The value of cookie `name` from the request's `Cookie` headers (the first one sent).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origins_are_normalized() {
        assert_eq!(
            origin_of("https://App.Example.com/after?x=1").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("https://app.example.com:443").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8787/").as_deref(),
            Some("http://127.0.0.1:8787")
        );
        for bad in [
            "null",
            "",
            "/relative",
            "ftp://x.example",
            "app.example.com",
        ] {
            assert_eq!(origin_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_trusted_origins_pass() {
        let t = TrustedOrigins::from_urls(["https://db.example.com", "https://app.example.com/"]);
        let ok = |h: HeaderMap| t.check(&h).is_ok();
        assert!(ok(headers(&[(header::ORIGIN, "https://app.example.com")])));
        assert!(ok(headers(&[(header::ORIGIN, "https://db.example.com")])));
        assert!(ok(headers(&[(
            header::REFERER,
            "https://app.example.com/page"
        )])));
        for evil in [
            headers(&[(header::ORIGIN, "https://evil.example")]),
            headers(&[(header::ORIGIN, "null")]),
            headers(&[(header::ORIGIN, "https://app.example.com.evil.example")]),
            headers(&[(header::ORIGIN, "http://app.example.com")]),
            headers(&[(header::ORIGIN, "https://app.example.com:8443")]),
            // The Origin decides when both are sent.
            headers(&[
                (header::ORIGIN, "https://evil.example"),
                (header::REFERER, "https://app.example.com/"),
            ]),
            headers(&[(
                header::REFERER,
                "https://evil.example/https://app.example.com/",
            )]),
            HeaderMap::new(),
        ] {
            let err = t.check(&evil).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN, "{evil:?}");
            assert_eq!(err.details["reason"], "cross-origin-request");
        }
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[
            (header::COOKIE, "a=1; claimdb_session_x=no"),
            (header::COOKIE, "claimdb_session=yes; b=2"),
        ]);
        assert_eq!(cookie(&h, "claimdb_session").as_deref(), Some("yes"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
