//! Past versions of documents, for reads at a past time (Firestore's `readTime`): what every
//! backend shares about them — the retention setting, the one check of a requested time, and
//! the pruning batch — so both backends refuse the same times with the same messages.
//!
//! Every backend keeps, beside its live documents, a `history` table: whenever a commit
//! replaces or deletes a document that existed before it, the version it replaced is kept with
//! `valid_from` (that version's update time) and `valid_to` (the replacing commit's time). The
//! document at time T is then the live one if its update time is ≤ T, else the history version
//! with `valid_from ≤ T < valid_to`, else none — so a read at T costs one more lookup only for
//! documents changed since T, and queries at T keep using the live indexes (see
//! [`crate::query::PreparedQuery::at`]).
//!
//! Which times can be answered is recorded in the database itself, in the snapshot a read sees,
//! not assumed from configuration: `history_from`, the earliest time from which the history is
//! complete. A store keeping history sets it when it opens (if unset), a store keeping none
//! clears it (PostgreSQL: on every commit of a node that keeps none, so nodes configured
//! differently never answer wrongly), pruning raises it past what it deleted, and `restore`
//! (import, migration) raises it to its own time. A read at T must have
//! `history_from ≤ T`, T no older than the configured retention and T not in the future.
//!
//! This module does no IO.

use std::time::Duration;

use claimdb_model::Timestamp;

use crate::StoreError;

/// How long past versions are kept unless configured otherwise: an hour, Firestore's window
/// for reads at a past time without point-in-time recovery.
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(3600);
/// The longest retention: seven days, Firestore's with point-in-time recovery.
pub const MAX_HISTORY_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// Most history rows one pruning pass deletes, plus twice what the commits since the last pass
/// added (so pruning keeps up with any write rate while each pass stays bounded).
pub const PRUNE_BATCH: usize = 1024;
/// How often pruning runs at most while the store is written to.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(1);

/// A retention as microseconds (saturating).
pub fn retention_micros(retention: Duration) -> i64 {
    i64::try_from(retention.as_micros()).unwrap_or(i64::MAX)
}

/// The time history older than which pruning deletes: `now` minus the retention (everything
/// when history is off).
pub fn prune_cutoff(now: Timestamp, retention: Duration) -> i64 {
    if retention.is_zero() {
        return now.micros();
    }
    now.micros().saturating_sub(retention_micros(retention))
}

/// Whether a read at `time` can be answered: not in the future (`now` is the database's
/// clock), kept at all (`retention` non-zero), no older than the retention, and not before
/// `history_from` (the earliest time the database's history is complete from, as stored in the
/// read's own snapshot; `None`: no history is kept). Future times are `InvalidArgument`, the
/// rest `FailedPrecondition`, as in Firestore.
pub fn check_read_time(
    time: Timestamp,
    now: Timestamp,
    retention: Duration,
    history_from: Option<Timestamp>,
) -> Result<(), StoreError> {
    if time > now {
        return Err(StoreError::InvalidArgument(format!(
            "readTime {time} is in the future (the database's time is {now}); read at a past \
             time or without readTime"
        )));
    }
    if retention.is_zero() {
        return Err(StoreError::FailedPrecondition(
            "this database keeps no past versions of documents (history_retention_secs = 0), \
             so it cannot read at a past readTime"
                .into(),
        ));
    }
    let oldest = now.micros().saturating_sub(retention_micros(retention));
    if time.micros() < oldest {
        return Err(StoreError::FailedPrecondition(format!(
            "readTime {time} is older than this database keeps past versions of documents: {} \
             (history_retention_secs = {}), so the oldest readable time now is {}",
            describe(retention),
            retention.as_secs(),
            Timestamp::from_micros(oldest).map_or_else(|_| oldest.to_string(), |t| t.to_string())
        )));
    }
    match history_from {
        Some(from) if time >= from => Ok(()),
        Some(from) => Err(StoreError::FailedPrecondition(format!(
            "readTime {time} is before {from}, from when this database has kept past versions \
             of documents (the history starts when the store starts keeping it, and after an \
             import)"
        ))),
        None => Err(StoreError::FailedPrecondition(
            "this database keeps no past versions of documents right now (a node sharing it \
             runs with history_retention_secs = 0), so it cannot read at a past readTime"
                .into(),
        )),
    }
}

/// A retention in words (`1 hour`, `90 seconds`).
fn describe(retention: Duration) -> String {
    let secs = retention.as_secs();
    let unit = |n: u64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    if secs.is_multiple_of(86_400) {
        unit(secs / 86_400, "day")
    } else if secs.is_multiple_of(3600) {
        unit(secs / 3600, "hour")
    } else if secs.is_multiple_of(60) {
        unit(secs / 60, "minute")
    } else {
        unit(secs, "second")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(micros: i64) -> Timestamp {
        Timestamp::from_micros(micros).unwrap()
    }

    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn read_times_are_checked_against_the_clock_the_retention_and_the_history() {
        let now = t(10 * HOUR);
        let hour = DEFAULT_HISTORY_RETENTION;
        let from = Some(t(HOUR));
        assert!(check_read_time(now, now, hour, from).is_ok());
        assert!(check_read_time(t(9 * HOUR), now, hour, from).is_ok());
        let future = check_read_time(t(10 * HOUR + 1), now, hour, from).unwrap_err();
        assert!(
            matches!(&future, StoreError::InvalidArgument(m) if m.contains("in the future")),
            "{future:?}"
        );
        let old = check_read_time(t(9 * HOUR - 1), now, hour, from).unwrap_err();
        assert!(
            matches!(&old, StoreError::FailedPrecondition(m)
                if m.contains("1 hour") && m.contains("history_retention_secs = 3600")),
            "{old:?}"
        );
        let before = check_read_time(t(9 * HOUR), now, hour, Some(t(9 * HOUR + 1))).unwrap_err();
        assert!(
            matches!(&before, StoreError::FailedPrecondition(m) if m.contains("from when")),
            "{before:?}"
        );
        let none = check_read_time(t(9 * HOUR), now, hour, None).unwrap_err();
        assert!(matches!(none, StoreError::FailedPrecondition(_)));
        let off = check_read_time(now, now, Duration::ZERO, from).unwrap_err();
        assert!(
            matches!(&off, StoreError::FailedPrecondition(m) if m.contains("= 0")),
            "{off:?}"
        );
    }

    #[test]
    fn retentions_read_as_words_and_cut_off_history() {
        assert_eq!(describe(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe(Duration::from_secs(7 * 86_400)), "7 days");
        assert_eq!(describe(Duration::from_secs(90)), "90 seconds");
        assert_eq!(describe(Duration::from_secs(120)), "2 minutes");
        assert_eq!(
            prune_cutoff(t(10 * HOUR), DEFAULT_HISTORY_RETENTION),
            9 * HOUR
        );
        assert_eq!(prune_cutoff(t(10 * HOUR), Duration::ZERO), 10 * HOUR);
    }
}
