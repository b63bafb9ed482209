//! The production [`Fetcher`]: reqwest over rustls (aws-lc-rs), no cookies, no credentials, a
//! per-request timeout, redirects limited, bodies capped at 1 MiB; plus the `Cache-Control:
//! max-age` parser every fetcher shares.
//!
//! Retry and caching policy are not here; they belong to the key cache.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::FetchError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::io::{FetchedDocument, Fetcher, FormPoster, PostResponse};

/// Key documents larger than this are refused.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Fetches key documents with reqwest.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    timeout: Duration,
}

impl HttpFetcher {
    pub fn new(timeout: Duration) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // At most three hops, and never from https down to plain http off loopback.
                let url = attempt.url();
                let host = url.host_str().unwrap_or("");
                let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
                if attempt.previous().len() > 3 {
                    attempt.error("more than three redirects")
                } else if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
                    attempt.follow()
                } else {
                    attempt.error("redirect to a non-https URL")
                }
            }))
            .user_agent(concat!("claimdb/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Transport {
                url: String::new(),
                message: e.to_string(),
            })?;
        Ok(Self { client, timeout })
    }
}

#[async_trait]
impl Fetcher for HttpFetcher {
    async fn get(&self, url: &str) -> Result<FetchedDocument, FetchError> {
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout {
                    url: url.to_owned(),
                    after: self.timeout,
                }
            } else {
                FetchError::Transport {
                    url: url.to_owned(),
                    message: e.to_string(),
                }
            }
        };
        let mut resp = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let max_age = resp
            .headers()
            .get_all("cache-control")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_max_age);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::Document {
                    url: url.to_owned(),
                    message: format!("larger than {MAX_DOCUMENT_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchedDocument { body, max_age })
    }
}

#[async_trait]
impl FormPoster for HttpFetcher {
    async fn post_form(
        &self,
        url: &str,
        form: &[(String, String)],
        basic_auth: Option<(&str, &str)>,
    ) -> Result<PostResponse, FetchError> {
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout {
                    url: url.to_owned(),
                    after: self.timeout,
                }
            } else {
                FetchError::Transport {
                    url: url.to_owned(),
                    message: e.to_string(),
                }
            }
        };
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        let mut req = self
            .client
            .post(url)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((user, password)) = basic_auth {
            // RFC 6749 §2.3.1: form-encode the client id and secret before Basic.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let creds = STANDARD.encode(format!("{}:{}", enc(user), enc(password)));
            req = req.header("authorization", format!("Basic {creds}"));
        }
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::Document {
                    url: url.to_owned(),
                    message: format!("larger than {MAX_DOCUMENT_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(PostResponse { status, body })
    }
}

/// `max-age=N` from one `Cache-Control` header value; `no-cache`/`no-store` mean zero.
pub fn parse_max_age(value: &str) -> Option<Duration> {
    let mut found = None;
    for directive in value.split(',') {
        let d = directive.trim();
        let lower = d.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            found = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_table() {
        let cases: &[(&str, Option<u64>)] = &[
            (
                "public, max-age=21600, must-revalidate, no-transform",
                Some(21600),
            ),
            ("max-age=0", Some(0)),
            ("Max-Age=\"60\"", Some(60)),
            ("no-store", Some(0)),
            ("private", None),
            ("max-age=abc", None),
            ("", None),
        ];
        for (h, want) in cases {
            assert_eq!(parse_max_age(h), want.map(Duration::from_secs), "{h}");
        }
    }
}
