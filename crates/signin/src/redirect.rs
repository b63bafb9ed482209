//! The allow-list for where a browser may be sent after login (`app_redirects`): a candidate
//! must be an absolute http(s) URL whose scheme, host and port equal an allowed entry's and
//! whose path lies under that entry's path. Everything that has fooled redirect checks before
//! is refused before or after parsing: scheme-relative `//evil`, backslashes, control
//! characters and whitespace, credentials (`https://app@evil`), look-alike hosts
//! (`app.example.com.evil.com`), percent-encoding in the authority, dot segments that climb out
//! of the allowed path. The URL returned is the parsed, normalized one, so what was checked is
//! what the browser gets.

use reqwest::Url;

/// Longest redirect URL accepted.
pub const MAX_REDIRECT_BYTES: usize = 2048;

/// The validated `app_redirects`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectPolicy {
    allowed: Vec<Url>,
}

impl RedirectPolicy {
    /// Validates each entry: an absolute http(s) URL without credentials, query or fragment.
    pub fn new(app_redirects: &[String]) -> Result<RedirectPolicy, String> {
        let mut allowed = Vec::with_capacity(app_redirects.len());
        for entry in app_redirects {
            let url = pre_check(entry)
                .and_then(|()| Url::parse(entry).map_err(|e| e.to_string()))
                .map_err(|e| format!("app_redirects entry {entry:?} is not usable: {e}"))?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err(format!(
                    "app_redirects entry {entry:?} contains credentials"
                ));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(format!(
                    "app_redirects entry {entry:?} must not have a query or fragment"
                ));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("app_redirects entry {entry:?} has no host"));
            }
            allowed.push(url);
        }
        Ok(RedirectPolicy { allowed })
    }

    /// The first allowed URL: where to go when the login request names none.
    pub fn default_target(&self) -> Option<String> {
        self.allowed.first().map(Url::to_string)
    }

    /// Returns the normalized URL when `candidate` is allowed, or why it is not.
    pub fn check(&self, candidate: &str) -> Result<String, String> {
        pre_check(candidate)?;
        let url = Url::parse(candidate).map_err(|e| format!("not an absolute URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a redirect URL must not contain credentials (user@host)".into());
        }
        let ok = self.allowed.iter().any(|a| {
            a.scheme() == url.scheme()
                && a.host_str() == url.host_str()
                && a.port_or_known_default() == url.port_or_known_default()
                && path_within(a.path(), url.path())
        });
        if ok {
            Ok(url.to_string())
        } else {
            Err("the URL is not under any of the configured app_redirects".into())
        }
    }
}

/// Checks on the raw text, before a lenient parser can normalize a trick away.
fn pre_check(s: &str) -> Result<(), String> {
    if s.len() > MAX_REDIRECT_BYTES {
        return Err(format!("longer than {MAX_REDIRECT_BYTES} bytes"));
    }
    if s.bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
        || !s.is_ascii()
    {
        return Err("contains whitespace, control characters, backslashes or non-ASCII".into());
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| "must start with https:// or http://".to_owned())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err("has no host".into());
    }
    if authority.contains('%') || authority.contains('@') {
        return Err("the host part must not contain '%' or '@'".into());
    }
    Ok(())
}

/// Whether `path` (already normalized by the parser) is `base` or below it.
fn path_within(base: &str, path: &str) -> bool {
    if base == "/" || base == path {
        return true;
    }
    if base.ends_with('/') {
        path.starts_with(base)
    } else {
        path.strip_prefix(base).is_some_and(|r| r.starts_with('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_redirects_are_refused() {
        let p = RedirectPolicy::new(&[
            "https://app.example.com/".to_owned(),
            "http://localhost:3000/app".to_owned(),
        ])
        .unwrap();
        let allowed = [
            ("https://app.example.com/", "https://app.example.com/"),
            ("https://app.example.com", "https://app.example.com/"),
            (
                "https://app.example.com/x/y?z=1#f",
                "https://app.example.com/x/y?z=1#f",
            ),
            ("https://APP.example.com/x", "https://app.example.com/x"),
            ("https://app.example.com:443/x", "https://app.example.com/x"),
            ("http://localhost:3000/app", "http://localhost:3000/app"),
            (
                "http://localhost:3000/app/home",
                "http://localhost:3000/app/home",
            ),
        ];
        for (c, want) in allowed {
            assert_eq!(p.check(c).as_deref(), Ok(want), "{c}");
        }
        let refused = [
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "https:evil.com",
            "https:/evil.com",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://evil.com/",
            "http://app.example.com/",
            "https://app.example.com:8443/",
            "https://app.example.com.evil.com/",
            "https://app.example.com@evil.com/",
            "https://user:pw@app.example.com/",
            "https://evil.com\\@app.example.com/",
            "https://evil.com\\.app.example.com/",
            "https://app.example.com%2eevil.com/",
            "https://app.example.com%40evil.com/",
            "https://evil.com%23@app.example.com/",
            "https://app.example.com\t.evil.com/",
            "https://app.example.com\n/",
            " https://app.example.com/",
            "https://app.ex\u{0430}mple.com/",
            "http://localhost:3000/application",
            "http://localhost:3000/app/../admin",
            "http://localhost:3000/app/%2e%2e/admin",
            "http://localhost:3001/app",
            "",
        ];
        for c in refused {
            assert!(p.check(c).is_err(), "{c:?} must be refused");
        }
        assert!(
            p.check(&format!("https://app.example.com/{}", "a".repeat(3000)))
                .is_err()
        );
    }

    #[test]
    fn bad_allow_list_entries_are_refused() {
        for bad in [
            "app.example.com",
            "//app.example.com",
            "https://u@app.example.com/",
            "https://app.example.com/?x=1",
            "ftp://app.example.com/",
        ] {
            assert!(RedirectPolicy::new(&[bad.to_owned()]).is_err(), "{bad}");
        }
        let p = RedirectPolicy::new(&["https://app.example.com/".to_owned()]).unwrap();
        assert_eq!(
            p.default_target().as_deref(),
            Some("https://app.example.com/")
        );
    }
}
