//! How a read sees the database — Firestore's `consistency_selector`, one of: in an open
//! `transaction`, in one the read begins (`newTransaction`, whose id is answered first), or at
//! a past `readTime`; none is a read of the latest state. A read-only transaction begun with a
//! `readTime` remembers it, and every read in it happens at that time. Reads at a past time
//! go to the engine's `_at` operations ([`ReadTime`]), which refuse times the store's history
//! does not reach; answers carry the time read at as their `readTime`.

use claimdb_engine::ReadTime;
use claimdb_model::Timestamp;
use serde_json::{Map as JsonMap, Value as Json};

use crate::status::Status;
use crate::transactions::{self, Transactions};

/// A read's consistency: the transaction it runs in (if any), whether the read began it, and
/// the time it reads at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consistency {
    pub transaction: Option<String>,
    /// The read began the transaction (`newTransaction`): its answer names it first.
    pub begun: bool,
    pub at: ReadTime,
}

impl Consistency {
    /// The `readTime` an answer carries: the time read at, or `now` for a read of the latest.
    pub fn answered_time(&self, now: Timestamp) -> Timestamp {
        self.at.time().unwrap_or(now)
    }

    /// Whether the reads should be remembered for the transaction's commit (a transaction
    /// reading at a past time pins nothing: its reads are of a state that no longer changes).
    pub fn pins_reads(&self) -> bool {
        self.transaction.is_some() && self.at == ReadTime::Latest
    }
}

/// Reads the consistency selector of a read request's `body`: at most one of `transaction`,
/// `newTransaction` and `readTime`. An unknown or expired transaction is refused here, before
/// anything is read.
pub fn select(
    transactions: &Transactions,
    body: &JsonMap<String, Json>,
) -> Result<Consistency, Status> {
    let given: Vec<&str> = ["transaction", "newTransaction", "readTime"]
        .into_iter()
        .filter(|k| body.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if let [first, second, ..] = given.as_slice() {
        return Err(Status::invalid(format!(
            "a read takes at most one of transaction, newTransaction and readTime, not both \
             {first} and {second}"
        )));
    }
    let latest = Consistency {
        transaction: None,
        begun: false,
        at: ReadTime::Latest,
    };
    Ok(match given.first().copied() {
        None => latest,
        Some("transaction") => {
            let Some(Json::String(id)) = body.get("transaction") else {
                return Err(Status::invalid("transaction must be a base64 string"));
            };
            let at = ReadTime::from_option(transactions.read_time(id)?);
            Consistency {
                transaction: Some(id.clone()),
                begun: false,
                at,
            }
        }
        Some("newTransaction") => {
            let options = transactions::options(body.get("newTransaction"))?;
            let at = ReadTime::from_option(options.read_time);
            Consistency {
                transaction: Some(transactions.begin(options)?),
                begun: true,
                at,
            }
        }
        _ => Consistency {
            at: ReadTime::At(read_time(body.get("readTime"))?),
            ..latest
        },
    })
}

/// A `readTime`: a proto3 JSON `Timestamp` (RFC 3339, up to nanoseconds; read to the
/// microsecond, rounding down).
pub fn read_time(json: Option<&Json>) -> Result<Timestamp, Status> {
    match json {
        Some(Json::String(text)) => {
            Timestamp::parse(text).map_err(|e| Status::invalid(format!("readTime: {e}")))
        }
        _ => Err(Status::invalid(
            "readTime must be a timestamp string such as \"2026-01-01T00:00:00.000000Z\"",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;
    use serde_json::json;

    fn body(json: Json) -> JsonMap<String, Json> {
        match json {
            Json::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn one_selector_at_most_and_transactions_remember_their_time() {
        let txs = Transactions::default();
        assert_eq!(select(&txs, &body(json!({}))).unwrap().at, ReadTime::Latest);
        let t = "2026-01-01T00:00:00.123456789Z";
        let at = select(&txs, &body(json!({"readTime": t}))).unwrap();
        assert_eq!(
            at.at,
            ReadTime::At(Timestamp::parse("2026-01-01T00:00:00.123456Z").unwrap())
        );
        assert!(!at.pins_reads());
        for bad in [json!({"readTime": 5}), json!({"readTime": "yesterday"})] {
            assert_eq!(
                select(&txs, &body(bad)).unwrap_err().code,
                Code::InvalidArgument
            );
        }
        let both = select(&txs, &body(json!({"readTime": t, "newTransaction": {}}))).unwrap_err();
        assert_eq!(both.code, Code::InvalidArgument);
        assert!(
            both.message.contains("newTransaction and readTime"),
            "{}",
            both.message
        );
        let begun = select(
            &txs,
            &body(json!({"newTransaction": {"readOnly": {"readTime": t}}})),
        )
        .unwrap();
        assert!(begun.begun && !begun.pins_reads());
        let id = begun.transaction.unwrap();
        let again = select(&txs, &body(json!({"transaction": id}))).unwrap();
        assert_eq!(again.at, begun.at);
        let plain = select(&txs, &body(json!({"newTransaction": {"readOnly": {}}}))).unwrap();
        assert_eq!(plain.at, ReadTime::Latest);
        assert!(plain.pins_reads());
        let unknown = select(&txs, &body(json!({"transaction": "bm90LWFuLWlk"}))).unwrap_err();
        assert_eq!(unknown.code, Code::InvalidArgument);
        assert_eq!(
            Consistency {
                transaction: None,
                begun: false,
                at: ReadTime::Latest
            }
            .answered_time(Timestamp::from_micros(7).unwrap())
            .micros(),
            7
        );
    }
}
