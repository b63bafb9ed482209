//! `claimdb doctor [--config FILE]`: checks a configuration as an operator would before going
//! live, one line per check — `ok`, `warn` or `fail`, with what to do about anything not ok:
//! the configuration parses; the store is reachable and writable with owner-only permissions;
//! every provider's discovery/JWKS answers and holds keys for its pinned algorithms, and the
//! clock agrees with the provider's `Date` header; the rules in force compile; `public_url`,
//! cookies, login callbacks and redirects are consistent; admin access is configured.
//!
//! Exit 0 when nothing failed (warnings allowed), 1 when a check failed, 2 when the doctor
//! itself could not run. It changes nothing except a probe record it writes and deletes to
//! prove the store is writable.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use claimdb_engine::{admin_key, rules_store};
use claimdb_identity::keys::KeySet;
use claimdb_identity::{Alg, KeySource, Provider, validate_providers};
use claimdb_server::cors::AppOrigins;
use claimdb_store::{RecordCondition, Store};

use crate::config::Config;
use crate::storage::Storage;
use crate::{ConfigArgs, runtime};

/// How long one provider request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Clock differences up to this are fine (HTTP dates have one-second resolution).
const CLOCK_OK: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warn,
    Fail,
}

/// The checks' findings, printed as they come.
#[derive(Default)]
struct Report {
    worst: Option<Level>,
}

impl Report {
    fn line(&mut self, level: Level, check: &str, text: &str, fix: Option<&str>) {
        let tag = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        match fix {
            Some(fix) => println!("{tag}  {check}: {text} — fix: {fix}"),
            None => println!("{tag}  {check}: {text}"),
        }
        self.worst = self.worst.max(Some(level));
    }

    fn ok(&mut self, check: &str, text: &str) {
        self.line(Level::Ok, check, text, None);
    }

    fn warn(&mut self, check: &str, text: &str, fix: &str) {
        self.line(Level::Warn, check, text, Some(fix));
    }

    fn fail(&mut self, check: &str, text: &str, fix: &str) {
        self.line(Level::Fail, check, text, Some(fix));
    }
}

pub(crate) fn run(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let mut report = Report::default();
    let config = match args.load(None) {
        Ok(c) => {
            let from = c.source.as_ref().map_or(
                "no file (defaults and CLAIMDB_* variables)".to_owned(),
                |p| p.display().to_string(),
            );
            report.ok("config", &format!("parses ({from})"));
            c
        }
        Err(e) => {
            report.fail(
                "config",
                &format!("{e:#}"),
                "correct the file or variable named above",
            );
            return Ok(ExitCode::from(1));
        }
    };
    runtime()?.block_on(async {
        let store = check_store(&config, &mut report).await;
        check_providers(&config, &mut report).await;
        check_rules(&config, store.as_deref(), &mut report).await;
        check_urls(&config, &mut report);
        check_admin(&config, store.as_deref(), &mut report).await;
        if let Some(store) = store {
            let _ = store.close().await;
        }
    });
    Ok(match report.worst {
        Some(Level::Fail) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

/// The store: reachable, writable (a probe record written and deleted), and for SQLite the
/// data directory's permissions. Returns it open for the other checks, when it could be.
async fn check_store(config: &Config, report: &mut Report) -> Option<std::sync::Arc<dyn Store>> {
    if let Storage::Sqlite { dir, .. } = &config.storage {
        check_permissions(dir, report);
        if !dir.join(claimdb_store::sqlite::DB_FILE).exists() {
            report.ok(
                "store",
                &format!(
                    "{} holds no database yet; `claimdb serve` creates it",
                    dir.display()
                ),
            );
            return None;
        }
    }
    let store = match config.storage.open().await {
        Ok(s) => s,
        Err(e) => {
            let text = format!("{e:#}");
            if text.contains("in use by another claimdb process") {
                // A running server holds the directory: it is reachable, and writable by it.
                report.ok("store", &format!("{text}; checked read-only"));
                return config.storage.open_read_only().await.ok();
            }
            report.fail(
                "store",
                &text,
                "make the data directory or PostgreSQL reachable for this user",
            );
            return None;
        }
    };
    let probe = format!("probe-{}", std::process::id());
    let written = store
        .put_record("doctor", &probe, Some("1".into()), RecordCondition::Any)
        .await;
    let removed = store
        .put_record("doctor", &probe, None, RecordCondition::Any)
        .await;
    match (written, removed) {
        (Ok(true), Ok(_)) => report.ok(
            "store",
            &format!("{}: reachable and writable", config.storage.describe()),
        ),
        (w, r) => {
            let e = w
                .err()
                .or(r.err())
                .map(|e| e.to_string())
                .unwrap_or_default();
            report.fail(
                "store",
                &format!("{}: not writable: {e}", config.storage.describe()),
                "give this user write access to the data directory or database",
            );
        }
    }
    Some(store)
}

/// The data directory should be 0700 and its files 0600: it holds every document, the users'
/// sessions and refresh tokens, and the issuer's private keys.
fn check_permissions(dir: &std::path::Path, report: &mut Report) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(meta) = std::fs::metadata(dir) else {
            report.ok(
                "permissions",
                &format!(
                    "{} does not exist yet; serve creates it 0700",
                    dir.display()
                ),
            );
            return;
        };
        let mut wide: Vec<String> = Vec::new();
        if meta.permissions().mode() & 0o077 != 0 {
            wide.push(format!(
                "{} ({:o})",
                dir.display(),
                meta.permissions().mode() & 0o777
            ));
        }
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(m) = entry.metadata() else { continue };
                let mode = m.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    wide.push(format!("{} ({mode:o})", entry.path().display()));
                }
                if m.is_dir() {
                    stack.push(entry.path());
                }
            }
        }
        if wide.is_empty() {
            report.ok(
                "permissions",
                &format!("{} is readable by its owner only", dir.display()),
            );
        } else {
            report.warn(
                "permissions",
                &format!("readable by other users: {}", wide.join(", ")),
                &format!("chmod -R go-rwx {}", dir.display()),
            );
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, report);
    }
}

async fn check_providers(config: &Config, report: &mut Report) {
    if config.providers.is_empty() {
        report.ok(
            "providers",
            "none configured: only claimdb's own tokens are accepted",
        );
        return;
    }
    let providers = match validate_providers(&config.providers) {
        Ok(p) => p,
        Err(e) => {
            report.fail("providers", &e.to_string(), "correct [[providers]]");
            return;
        }
    };
    let client = match reqwest::Client::builder().timeout(FETCH_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            report.fail(
                "providers",
                &format!("no HTTP client: {e}"),
                "see the error",
            );
            return;
        }
    };
    for p in &providers {
        check_provider(&client, p, report).await;
    }
    for c in &config.providers {
        if c.client_id.is_some() && c.client_secret.is_none() {
            report.fail(
                &format!("provider {}", c.name),
                "client_id is set for login but there is no client secret",
                &format!(
                    "set client_secret or {}",
                    crate::config::client_secret_var(&c.name)
                ),
            );
        }
    }
}

/// One provider: its key document answers, holds keys for each pinned algorithm, and its
/// `Date` agrees with our clock.
async fn check_provider(client: &reqwest::Client, p: &Provider, report: &mut Report) {
    let check = format!("provider {}", p.name);
    let (url, x509) = match &p.keys {
        KeySource::Local(l) => {
            report.ok(&check, &format!("keys from {}", l.label));
            return;
        }
        KeySource::Jwks(u) => (u.clone(), false),
        KeySource::X509(u) => (u.clone(), true),
        KeySource::Discovery(u) => match fetch(client, u).await {
            Ok((body, _)) => match serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|d| d["jwks_uri"].as_str().map(str::to_owned))
            {
                Some(jwks) => (jwks, false),
                None => {
                    report.fail(
                        &check,
                        &format!("the discovery document {u} has no jwks_uri"),
                        "check the provider's issuer / discovery URL",
                    );
                    return;
                }
            },
            Err(e) => {
                report.fail(
                    &check,
                    &format!("discovery {u}: {e}"),
                    "check the URL and that this host can reach the provider",
                );
                return;
            }
        },
    };
    let (body, date) = match fetch(client, &url).await {
        Ok(r) => r,
        Err(e) => {
            report.fail(
                &check,
                &format!("keys {url}: {e}"),
                "check the URL and that this host can reach the provider",
            );
            return;
        }
    };
    let set = if x509 {
        KeySet::from_x509_map(&body)
    } else {
        KeySet::from_jwks(&body)
    };
    let set = match set {
        Ok(s) => s,
        Err(e) => {
            report.fail(
                &check,
                &format!("keys {url} are unusable: {e}"),
                "check the URL points at the provider's keys",
            );
            return;
        }
    };
    let missing: Vec<&str> = p
        .algorithms
        .iter()
        .filter(|a| !has_key_for(&set, **a))
        .map(|a| a.name())
        .collect();
    if missing.is_empty() {
        report.ok(
            &check,
            &format!("{} key(s) at {url} for {}", set.len(), names(&p.algorithms)),
        );
    } else {
        report.fail(
            &check,
            &format!("{url} has no key for {}", missing.join(", ")),
            "pin the algorithms the provider signs with (`algorithms = [...]`)",
        );
    }
    match date {
        None => report.warn(
            &format!("clock vs {}", p.name),
            "the provider sent no Date header",
            "make sure this host's clock is synchronized (NTP)",
        ),
        Some(theirs) => {
            let ours = SystemTime::now();
            let (skew, sign) = match ours.duration_since(theirs) {
                Ok(d) => (d, "ahead of"),
                Err(e) => (e.duration(), "behind"),
            };
            let text = format!("this host is {} s {sign} {}", skew.as_secs(), p.name);
            if skew <= CLOCK_OK {
                report.ok(&format!("clock vs {}", p.name), &text);
            } else if skew < p.clock_skew {
                report.warn(
                    &format!("clock vs {}", p.name),
                    &format!("{text} (tokens allow {} s)", p.clock_skew.as_secs()),
                    "synchronize this host's clock (NTP)",
                );
            } else {
                report.fail(
                    &format!("clock vs {}", p.name),
                    &format!(
                        "{text}, more than the {} s tokens allow: fresh tokens will be refused",
                        p.clock_skew.as_secs()
                    ),
                    "synchronize this host's clock (NTP)",
                );
            }
        }
    }
}

fn has_key_for(set: &KeySet, alg: Alg) -> bool {
    set.find(None, alg).is_some() || set.kids().iter().any(|k| set.find(Some(k), alg).is_some())
}

fn names(algs: &[Alg]) -> String {
    algs.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
}

/// GETs `url`: the body and the `Date` header.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
) -> Result<(Vec<u8>, Option<SystemTime>), String> {
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("answered HTTP {}", status.as_u16()));
    }
    let date = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    Ok((body.to_vec(), date))
}

/// The rules in force compile: the file's, or the newest stored version's.
async fn check_rules(config: &Config, store: Option<&dyn Store>, report: &mut Report) {
    if let (Some(path), false) = (&config.rules, config.rules_in_database) {
        match std::fs::read_to_string(path) {
            Err(e) => report.fail(
                "rules",
                &format!("cannot read {}: {e}", path.display()),
                "fix the `rules` path",
            ),
            Ok(source) => match claimdb_rules::Ruleset::compile(&source) {
                Ok(r) => report.ok(
                    "rules",
                    &format!(
                        "{} compiles ({} allow statements)",
                        path.display(),
                        r.allow_statements().len()
                    ),
                ),
                Err(d) => report.fail(
                    "rules",
                    &format!("{} does not compile: {} error(s)", path.display(), d.len()),
                    &format!("run `claimdb rules check {}`", path.display()),
                ),
            },
        }
        return;
    }
    let stored = match store {
        Some(s) => match rules_store::head(s).await {
            Ok(Some(v)) => rules_store::get(s, v).await.ok().flatten(),
            Ok(None) => None,
            Err(e) => {
                report.fail(
                    "rules",
                    &format!("reading stored rules: {e}"),
                    "see the error",
                );
                return;
            }
        },
        None => None,
    };
    match (stored, &config.rules) {
        (Some(r), _) => match claimdb_rules::Ruleset::compile(&r.source) {
            Ok(_) => report.ok("rules", &format!("database version {} compiles", r.version)),
            Err(d) => report.fail(
                "rules",
                &format!(
                    "database version {} does not compile: {} error(s)",
                    r.version,
                    d.len()
                ),
                "store rules that compile: PUT /v1/admin/rules or `claimdb rules set FILE`",
            ),
        },
        (None, Some(path)) => report.ok(
            "rules",
            &format!(
                "none stored yet; {} seeds version 1 at the first start",
                path.display()
            ),
        ),
        (None, None) => report.warn(
            "rules",
            "none configured or stored: every request will be denied",
            "set `rules = \"firestore.rules\"`, or store rules with `claimdb rules set FILE`",
        ),
    }
}

/// `public_url`, cookies, login callbacks and redirects.
fn check_urls(config: &Config, report: &mut Report) {
    let url = &config.issuer.issuer;
    let loopback_listen = config.listen.ip().is_loopback();
    if config.public_url_configured {
        report.ok(
            "public_url",
            &format!("{url} (the `iss` of claimdb's tokens)"),
        );
    } else if loopback_listen {
        report.warn(
            "public_url",
            &format!("not set: tokens are issued for {url}, this loopback address"),
            "set public_url to the URL clients use before going live",
        );
    } else {
        report.fail(
            "public_url",
            &format!(
                "not set while listening on {}: tokens and login callbacks would name {url}",
                config.listen
            ),
            "set public_url to the https URL clients use",
        );
    }
    if url.starts_with("https://") {
        report.ok("cookies", "Secure, HttpOnly, SameSite=Lax");
    } else {
        report.warn(
            "cookies",
            "not Secure: public_url is plain http (allowed on loopback only, for development)",
            "serve claimdb behind TLS and set an https public_url",
        );
    }
    if !loopback_listen && !url.starts_with("https://") {
        report.warn(
            "listen",
            &format!("plain HTTP on {}, a non-loopback address", config.listen),
            "put a TLS-terminating proxy in front and set an https public_url",
        );
    }
    let login: Vec<&str> = config
        .providers
        .iter()
        .filter(|p| p.client_id.is_some())
        .map(|p| p.name.as_str())
        .collect();
    for name in &login {
        report.ok(
            &format!("login {name}"),
            &format!("register {url}/v1/login/{name}/callback as a redirect URI at the provider"),
        );
    }
    if !login.is_empty() && config.app_redirects.is_empty() {
        report.warn(
            "app_redirects",
            "login is configured but no app URL may be returned to after it",
            "list your app's URLs in app_redirects",
        );
    } else if !config.app_redirects.is_empty() {
        report.ok(
            "app_redirects",
            &format!(
                "{} (these origins get CORS with credentials)",
                config.app_redirects.join(", ")
            ),
        );
    }
    match &config.cors_origins {
        AppOrigins::None => {}
        AppOrigins::List(origins) => report.ok(
            "cors_origins",
            &format!(
                "{} (CORS without credentials: bearer tokens only)",
                origins.join(", ")
            ),
        ),
        AppOrigins::Any => report.warn(
            "cors_origins",
            "\"*\": every website a user visits may call claimdb from the user's browser and \
             read what the rules allow unauthenticated callers",
            "list your apps' origins instead",
        ),
    }
}

/// Someone can use the admin API: a configured key, a generated one, or admin roles.
async fn check_admin(config: &Config, store: Option<&dyn Store>, report: &mut Report) {
    if config.admin_key.is_some() {
        report.ok("admin", "admin_key is configured");
    } else {
        match store {
            Some(s) => match admin_key::stored_hash(s).await {
                Ok(Some(_)) => report.ok(
                    "admin",
                    "a generated admin key is stored (lost it? `claimdb admin-key reset`)",
                ),
                Ok(None) => report.warn(
                    "admin",
                    "no admin key yet",
                    "`claimdb serve` prints one at its first start; or set admin_key",
                ),
                Err(e) => report.fail("admin", &e.to_string(), "`claimdb admin-key reset`"),
            },
            None => report.warn(
                "admin",
                "no admin key yet",
                "`claimdb serve` prints one at its first start; or set admin_key",
            ),
        }
    }
    if !config.admin_roles.is_empty() {
        report.ok(
            "admin roles",
            &format!(
                "tokens with a role in {:?} may use the admin API",
                config.admin_roles
            ),
        );
    }
}
