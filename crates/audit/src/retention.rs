//! What the audit log keeps: every file until the directory holds more than `max_bytes` (then
//! the oldest files go first) or every event in a file is older than `max_age` — whatever the
//! number of files, so however often the server restarts. The file being written is never
//! deleted; empty files (left by runs that recorded nothing) are.
//!
//! A file's events are all older than the next file's name (see `files`), and no newer than its
//! last modification (the writer never appends to a file of an earlier run, and writes an event
//! after it happened), so a file may go by age once either is older than the cutoff.

use std::path::Path;
use std::time::Duration;

use super::files::LogFile;

/// A log file as retention sees it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub file: LogFile,
    pub len: u64,
    /// Its last modification, µs since the epoch (`None` if unknown).
    pub modified: Option<i64>,
}

/// The retention settings of an [`AuditConfig`](super::AuditConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub max_bytes: u64,
    pub max_age: Option<Duration>,
    /// Room kept for the file being written to grow into (its rotation size), so that the
    /// directory stays under `max_bytes` between two retention passes.
    pub reserve: u64,
}

/// The indexes of `files` (oldest first) to delete at `now_micros`. `current` (the file being
/// written) is never among them.
pub(crate) fn to_delete(
    files: &[Entry],
    current: Option<&Path>,
    now_micros: i64,
    policy: Policy,
) -> Vec<usize> {
    let cutoff = policy
        .max_age
        .map(|age| now_micros.saturating_sub(i64::try_from(age.as_micros()).unwrap_or(i64::MAX)));
    let is_current = |e: &Entry| current == Some(e.file.path.as_path());
    let mut delete = vec![false; files.len()];
    for (i, entry) in files.iter().enumerate() {
        if is_current(entry) {
            continue;
        }
        // The newest its events can be.
        let newest = [
            entry.modified,
            files.get(i + 1).map(|next| next.file.micros),
        ]
        .into_iter()
        .flatten()
        .min();
        let expired = cutoff
            .zip(newest)
            .is_some_and(|(cutoff, newest)| newest <= cutoff);
        delete[i] = entry.len == 0 || expired;
    }
    let mut total: u64 = files
        .iter()
        .zip(&delete)
        .filter(|(_, gone)| !**gone)
        .map(|(e, _)| {
            if is_current(e) {
                e.len.max(policy.reserve)
            } else {
                e.len
            }
        })
        .sum();
    for (i, entry) in files.iter().enumerate() {
        if total <= policy.max_bytes {
            break;
        }
        if delete[i] || is_current(entry) {
            continue;
        }
        delete[i] = true;
        total -= entry.len;
    }
    (0..files.len()).filter(|&i| delete[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    /// Files started on the given days with the given sizes, unknown modification times.
    fn files(spec: &[(i64, u64)]) -> Vec<Entry> {
        spec.iter()
            .map(|&(day, len)| Entry {
                file: LogFile {
                    micros: day * DAY,
                    path: format!("f{day}").into(),
                },
                len,
                modified: None,
            })
            .collect()
    }

    fn policy(max_bytes: u64, days: Option<u64>) -> Policy {
        Policy {
            max_bytes,
            max_age: days.map(|d| Duration::from_secs(d * 86_400)),
            reserve: 0,
        }
    }

    #[test]
    fn by_age_a_file_goes_once_the_next_one_is_older_than_the_cutoff() {
        // Files started on days 1, 5, 20 and 40 (the last being written); now is day 45, keep 30
        // days: the cutoff is day 15. Day 1's events are older than day 5: gone. Day 5's may be
        // as new as day 20: kept.
        let f = files(&[(1, 10), (5, 10), (20, 10), (40, 10)]);
        let current = Path::new("f40");
        assert_eq!(
            to_delete(&f, Some(current), 45 * DAY, policy(1000, Some(30))),
            [0]
        );
        // No age limit: nothing goes.
        assert!(to_delete(&f, Some(current), 45 * DAY, policy(1000, None)).is_empty());
        // The file being written stays even when everything is old.
        assert_eq!(
            to_delete(&f, Some(current), 400 * DAY, policy(1000, Some(30))),
            [0, 1, 2]
        );
    }

    #[test]
    fn by_age_a_file_last_written_before_the_cutoff_goes() {
        // A run that ended on day 6 (its file last written then), a restart on day 100: day 6
        // is past the 30-day cutoff although the next file's name is not.
        let mut f = files(&[(1, 10), (100, 10)]);
        f[0].modified = Some(6 * DAY);
        let current = Path::new("f100");
        let keep_30_days = policy(1000, Some(30));
        assert_eq!(to_delete(&f, Some(current), 101 * DAY, keep_30_days), [0]);
        f[0].modified = Some(80 * DAY);
        assert!(to_delete(&f, Some(current), 101 * DAY, keep_30_days).is_empty());
    }

    #[test]
    fn by_size_the_oldest_go_first_and_never_the_current_one() {
        let f = files(&[(1, 40), (2, 40), (3, 40), (4, 40)]);
        let current = Path::new("f4");
        assert!(to_delete(&f, Some(current), 5 * DAY, policy(160, None)).is_empty());
        assert_eq!(
            to_delete(&f, Some(current), 5 * DAY, policy(100, None)),
            [0, 1]
        );
        // Over the bound with only the current file left: it stays.
        assert_eq!(
            to_delete(&f, Some(current), 5 * DAY, policy(10, None)),
            [0, 1, 2]
        );
        // Room for the current file to grow to its rotation size counts.
        let reserving = Policy {
            reserve: 100,
            ..policy(150, None)
        };
        assert_eq!(to_delete(&f, Some(current), 5 * DAY, reserving), [0, 1]);
    }

    #[test]
    fn empty_files_go_and_no_count_limit_applies() {
        // 500 small files (500 restarts) under the size bound: all kept, but the empty ones.
        let spec: Vec<(i64, u64)> = (0..500)
            .map(|d| (d, if d % 7 == 3 { 0 } else { 100 }))
            .collect();
        let f = files(&spec);
        let current = Path::new("f499");
        let gone = to_delete(&f, Some(current), 600 * DAY, policy(1 << 20, None));
        assert!(gone.iter().all(|&i| i % 7 == 3), "{gone:?}");
        assert_eq!(gone.len(), (0..500).filter(|d| d % 7 == 3).count());
    }
}
