//! One audit record ([`AuditEvent`]) and its on-disk form: one JSON object per line, every key
//! always present (`null` when absent), time as RFC 3339 UTC with microseconds.
//!
//! The domain struct is not `Serialize`: lines are written by `encode.rs` and read through a
//! private serde type converted explicitly, so the file format stays stable while the struct can
//! change. Encoding happens on the writer thread, never on the request path.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use claimdb_model::Timestamp;
use serde::Deserialize;

/// One authorization decision (or admin operation), as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When the decision was made (stored with microsecond precision, rounded down).
    pub time: SystemTime,
    /// The request id (`x-request-id`), to correlate with the server's logs.
    pub request_id: String,
    /// The caller's uid; `None` for an unauthenticated request.
    pub uid: Option<String>,
    /// The identity provider that issued the caller's token.
    pub provider: Option<String>,
    /// `get`, `list`, `create`, `update`, `delete`, or an admin operation such as
    /// `admin.claims.put`. A `Cow` so the fixed names cost no allocation: `"get".into()`.
    pub method: Cow<'static, str>,
    /// The document or collection path (below `/databases/(default)/documents`), or the admin
    /// resource.
    pub path: String,
    pub decision: Decision,
    /// Where the deciding rule is, such as `firestore.rules:7:5`.
    pub rule: Option<String>,
    /// Why, in words (the denial explanation).
    pub reason: Option<String>,
}

/// The outcome of an authorization decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    /// `"allow"` or `"deny"`, as in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Appends `event` as one JSON line (with its `\n`) to `out`. This is the log's file format;
/// `claimdb audit --json` and the admin API print the same form.
pub fn encode_line(event: &AuditEvent, out: &mut Vec<u8>) {
    super::encode::encode(event, out);
}

/// Parses one line of the log (without its `\n`).
pub fn decode_line(line: &[u8]) -> Result<AuditEvent, String> {
    let fast_time = super::encode::line_time(line);
    let line: LineOwned = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    // The writer's own time format is read arithmetically; any other RFC 3339 form is parsed.
    let micros = match fast_time {
        Some(micros) => micros,
        None => Timestamp::parse(&line.time)
            .map_err(|e| e.to_string())?
            .micros(),
    };
    Ok(AuditEvent {
        time: system_time_from_micros(micros),
        request_id: line.request_id,
        uid: line.uid,
        provider: line.provider,
        method: Cow::Owned(line.method),
        path: line.path,
        decision: line.decision.into(),
        rule: line.rule,
        reason: line.reason,
    })
}

/// Microseconds since the Unix epoch, rounded down, clamped to the years 0001–9999 that RFC 3339
/// can spell.
pub(crate) fn micros_since_epoch(t: SystemTime) -> i64 {
    const MIN: i64 = -62_135_596_800_000_000;
    const MAX: i64 = 253_402_300_799_999_999;
    let micros: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i128,
        Err(e) => -(e.duration().as_nanos().div_ceil(1_000) as i128),
    };
    micros.clamp(MIN as i128, MAX as i128) as i64
}

pub(crate) fn system_time_from_micros(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// A time as the log writes it: RFC 3339 UTC with microseconds, `2026-11-23T14:00:00.123456Z`.
pub fn format_time(t: SystemTime) -> String {
    let micros = micros_since_epoch(t);
    match Timestamp::from_micros(micros) {
        Ok(ts) => ts.to_string(),
        // Unreachable: micros_since_epoch clamps into Timestamp's range.
        Err(_) => format!("{micros}µs"),
    }
}

/// The line as read. Unknown keys are tolerated so a newer writer's lines stay readable.
#[derive(Deserialize)]
struct LineOwned {
    time: String,
    request_id: String,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    method: String,
    path: String,
    decision: LineDecision,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The decision as spelled in a line.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum LineDecision {
    Allow,
    Deny,
}

impl From<LineDecision> for Decision {
    fn from(d: LineDecision) -> Decision {
        match d {
            LineDecision::Allow => Decision::Allow,
            LineDecision::Deny => Decision::Deny,
        }
    }
}
