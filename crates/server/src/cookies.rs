//! claimdb's cookies on the wire: their names and `Set-Cookie` values (HttpOnly, SameSite=Lax,
//! Path=/, Max-Age, and `Secure` when the sign-in says the public URL needs it — everywhere but
//! plain http on loopback).
//!
//! Whether a cookie must be `Secure` is decided by `claimdb_signin::cookies_need_secure` from the
//! public URL; this file only writes the header values.

use std::time::Duration;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "claimdb_session";
/// The short-lived cookie that binds a login attempt to the browser that started it.
pub const LOGIN_COOKIE: &str = "claimdb_login";

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Max-Age, and Secure if `secure`.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Max-Age={}; Path=/; HttpOnly; SameSite=Lax{secure}",
        max_age.as_secs()
    )
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(name, "", Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_carry_the_required_attributes() {
        let c = set_cookie(SESSION_COOKIE, "v", Duration::from_secs(60), true);
        assert_eq!(
            c,
            "claimdb_session=v; Max-Age=60; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        let c = set_cookie(SESSION_COOKIE, "v", Duration::from_secs(60), false);
        assert!(!c.contains("Secure") && c.contains("HttpOnly"));
        assert!(clear_cookie(LOGIN_COOKIE, true).contains("Max-Age=0"));
        assert!(clear_cookie(LOGIN_COOKIE, true).ends_with("; Secure"));
    }
}
