//! Browser sign-in over HTTP: `GET /v1/login/{provider}?redirect=<app URL>` (302 to the
//! provider, with the short-lived `claimdb_login` cookie binding the attempt to this browser),
//! `GET /v1/login/{provider}/callback` (302 to the app with the `claimdb_session` cookie) and
//! `POST /v1/logout` (ends the session, clears the cookie).
//!
//! Only the provider's public parameters and the allow-listed app URL ever appear in a URL; the
//! session id travels only in an HttpOnly cookie (Secure unless the public URL is plain-http
//! loopback, SameSite=Lax). The flow's checks are the sign-in's (`claimdb_signin`); a failed
//! callback answers with the API's JSON error and clears the login cookie.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use claimdb_signin::CallbackParams;
use claimdb_signin::login::LOGIN_TTL;
use serde::Deserialize;

use crate::AppState;
use crate::cookies::{LOGIN_COOKIE, SESSION_COOKIE, clear_cookie, set_cookie};
use crate::csrf::cookie;
use crate::error::ApiError;
use crate::extract::{ApiQuery, Ctx};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartParams {
    /// Where to send the browser after the login; must be under one of `app_redirects`
    /// (default: the first of them).
    redirect: Option<String>,
}

/// Whether the cookies must be `Secure` (as for an https public URL when there is no sign-in).
fn secure(state: &AppState) -> bool {
    state.sign_in.as_ref().is_none_or(|s| s.cookies_secure())
}

fn redirect(location: &str, cookies: &[String]) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(location)
        .map_err(|_| ApiError::invalid("the redirect target is not a valid header value"))?;
    let mut r = StatusCode::FOUND.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

/// `GET /v1/login/{provider}`: starts a login and sends the browser to the provider.
pub(crate) async fn start(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    ApiQuery(params): ApiQuery<StartParams>,
) -> Result<Response, ApiError> {
    let start = state
        .sign_in()?
        .login_start(&provider, params.redirect.as_deref())
        .await?;
    let binding = set_cookie(
        LOGIN_COOKIE,
        &start.browser_binding,
        LOGIN_TTL,
        secure(&state),
    );
    redirect(&start.authorization_url, &[binding])
}

/// `GET /v1/login/{provider}/callback`: completes the login, sets the session cookie and sends
/// the browser to the app URL the login was started with.
pub(crate) async fn callback(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let secure = secure(&state);
    let clear_binding = clear_cookie(LOGIN_COOKIE, secure);
    let result = async {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
                .map_err(|e| ApiError::invalid(format!("invalid query string: {e}")))?;
        let binding = cookie(&headers, LOGIN_COOKIE);
        let done = state
            .sign_in()?
            .login_callback(
                &ctx,
                &provider,
                &CallbackParams::from_pairs(&pairs),
                binding.as_deref(),
            )
            .await?;
        let session = set_cookie(SESSION_COOKIE, &done.session_id, done.session_ttl, secure);
        redirect(&done.redirect, &[session, clear_binding.clone()])
    }
    .await;
    match result {
        Ok(r) => r,
        Err(e) => {
            let mut r = e.into_response();
            if let Ok(v) = HeaderValue::from_str(&clear_binding) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
    }
}

/// `POST /v1/logout`: ends the session named by the cookie and clears it (204). Without a
/// session cookie it only clears.
pub(crate) async fn logout(
    State(state): State<AppState>,
    Ctx(_ctx): Ctx,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = cookie(&headers, SESSION_COOKIE);
    state.sign_in()?.logout(session.as_deref()).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(SESSION_COOKIE, secure(&state))) {
        h.append(header::SET_COOKIE, v);
    }
    Ok(r)
}
