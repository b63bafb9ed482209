//! The OAuth side of `POST /v1/token` on the wire: reading the form fields into a [`Grant`]
//! (RFC 6749 §3.2: a repeated field is refused, unknown fields are ignored; RFC 8693's token
//! types) and the HTTP status of each OAuth error code (RFC 6749 §5.2).
//!
//! Running the grant is `claimdb_signin`'s; this file only translates between HTTP and it.

use axum::http::StatusCode;
use claimdb_signin::exchange::{
    GRANT_REFRESH_TOKEN, GRANT_TOKEN_EXCHANGE, Grant, OAuthError, OAuthErrorCode,
    TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT,
};

/// Parses the form fields (`application/x-www-form-urlencoded`, already decoded). A field
/// given twice is refused (RFC 6749 §3.2); unknown fields are ignored, as the RFC says.
pub(crate) fn grant_from_form(fields: &[(String, String)]) -> Result<Grant, OAuthError> {
    let get = |name: &str| -> Result<Option<&str>, OAuthError> {
        let mut it = fields.iter().filter(|(k, _)| k == name);
        let first = it.next().map(|(_, v)| v.as_str());
        if it.next().is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is given more than once"
            )));
        }
        Ok(first)
    };
    let need = |name: &str| -> Result<String, OAuthError> {
        match get(name)? {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => Err(OAuthError::invalid_request(format!(
                "parameter {name} is required"
            ))),
        }
    };
    match get("grant_type")? {
        Some(GRANT_REFRESH_TOKEN) => Ok(Grant::RefreshToken {
            refresh_token: need("refresh_token")?,
        }),
        Some(GRANT_TOKEN_EXCHANGE) => {
            let subject_token_type = need("subject_token_type")?;
            if subject_token_type != TOKEN_TYPE_JWT && subject_token_type != TOKEN_TYPE_ID_TOKEN {
                return Err(OAuthError::invalid_request(format!(
                    "subject_token_type must be {TOKEN_TYPE_JWT} or {TOKEN_TYPE_ID_TOKEN}"
                )));
            }
            if get("actor_token")?.is_some() {
                return Err(OAuthError::invalid_request(
                    "delegation (actor_token) is not supported".into(),
                ));
            }
            if let Some(t) = get("requested_token_type")?
                && t != TOKEN_TYPE_ID_TOKEN
                && t != TOKEN_TYPE_JWT
            {
                return Err(OAuthError::invalid_request(format!(
                    "requested_token_type {t} is not offered; claimdb issues ID tokens"
                )));
            }
            Ok(Grant::TokenExchange {
                subject_token: need("subject_token")?,
                subject_token_type,
            })
        }
        Some("") | None => Err(OAuthError::invalid_request(
            "parameter grant_type is required".into(),
        )),
        Some(other) => Err(OAuthError {
            error: OAuthErrorCode::UnsupportedGrantType,
            error_description: format!(
                "grant_type {other:?} is not supported; use {GRANT_REFRESH_TOKEN} or {GRANT_TOKEN_EXCHANGE}"
            ),
            reason: None,
        }),
    }
}

/// The HTTP status an OAuth error is answered with.
pub(crate) fn status_of(e: &OAuthError) -> StatusCode {
    match e.error {
        OAuthErrorCode::InvalidRequest
        | OAuthErrorCode::InvalidGrant
        | OAuthErrorCode::UnsupportedGrantType => StatusCode::BAD_REQUEST,
        OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn grant_parsing_table() {
        type Case<'a> = (Vec<(&'a str, &'a str)>, Result<(), OAuthErrorCode>);
        let cases: Vec<Case> = vec![
            (
                vec![("grant_type", "refresh_token"), ("refresh_token", "x")],
                Ok(()),
            ),
            (
                vec![("grant_type", "refresh_token")],
                Err(OAuthErrorCode::InvalidRequest),
            ),
            (
                vec![
                    ("grant_type", GRANT_TOKEN_EXCHANGE),
                    ("subject_token", "t"),
                    ("subject_token_type", TOKEN_TYPE_JWT),
                ],
                Ok(()),
            ),
            (
                vec![
                    ("grant_type", GRANT_TOKEN_EXCHANGE),
                    ("subject_token", "t"),
                    (
                        "subject_token_type",
                        "urn:ietf:params:oauth:token-type:access_token",
                    ),
                ],
                Err(OAuthErrorCode::InvalidRequest),
            ),
            (
                vec![
                    ("grant_type", GRANT_TOKEN_EXCHANGE),
                    ("subject_token", "t"),
                    ("subject_token", "u"),
                    ("subject_token_type", TOKEN_TYPE_JWT),
                ],
                Err(OAuthErrorCode::InvalidRequest),
            ),
            (
                vec![
                    ("grant_type", GRANT_TOKEN_EXCHANGE),
                    ("subject_token", "t"),
                    ("subject_token_type", TOKEN_TYPE_JWT),
                    ("actor_token", "a"),
                ],
                Err(OAuthErrorCode::InvalidRequest),
            ),
            (
                vec![("grant_type", "password")],
                Err(OAuthErrorCode::UnsupportedGrantType),
            ),
            (vec![], Err(OAuthErrorCode::InvalidRequest)),
        ];
        for (pairs, want) in cases {
            let got = grant_from_form(&form(&pairs))
                .map(|_| ())
                .map_err(|e| e.error);
            assert_eq!(got, want, "{pairs:?}");
        }
    }

    #[test]
    fn client_errors_are_400_and_ours_5xx() {
        let e = |error| OAuthError {
            error,
            error_description: String::new(),
            reason: None,
        };
        assert_eq!(
            status_of(&e(OAuthErrorCode::InvalidGrant)),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(&e(OAuthErrorCode::InvalidRequest)),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(&e(OAuthErrorCode::UnsupportedGrantType)),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(&e(OAuthErrorCode::ServerError)),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status_of(&e(OAuthErrorCode::TemporarilyUnavailable)),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
