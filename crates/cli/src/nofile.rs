//! The open-file limit (`RLIMIT_NOFILE`) for `serve`: the soft limit is raised to the hard one at
//! start (many systems still default the soft limit to 1,024), and the connection cap is fitted
//! under it with room to spare for the store, the audit log and outgoing connections, so client
//! connections alone can never exhaust descriptors and make `accept` fail.
//!
//! Not here: what happens at the cap (`claimdb_server`'s accept loop).

/// Descriptors kept for everything but client connections: a quarter of the limit, at least 64
/// (SQLite holds three per connection, the audit log and key files a few, PostgreSQL one per
/// pooled connection).
fn reserve(limit: u64) -> u64 {
    (limit / 4).max(64)
}

/// The largest connection cap that fits `limit` open files.
pub(crate) fn cap_for(limit: u64) -> usize {
    let room = limit.saturating_sub(reserve(limit)).max(16);
    usize::try_from(room).unwrap_or(usize::MAX)
}

/// Raises the soft open-file limit to the hard one, logs the outcome, and returns
/// `max_connections` lowered (with a warning) if it does not fit the resulting limit.
pub(crate) fn prepare(max_connections: usize) -> usize {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE);
    let limit = match (before, rlimit::increase_nofile_limit(u64::MAX)) {
        (Ok((soft, hard)), Ok(now)) => {
            if now > soft {
                tracing::info!(
                    "open-file limit (RLIMIT_NOFILE) raised from {soft} to {now} (hard limit {hard})"
                );
            } else {
                tracing::info!(
                    "open-file limit (RLIMIT_NOFILE) is {now} (hard limit {hard}; the soft limit cannot go higher)"
                );
            }
            Some(now)
        }
        (Ok((soft, hard)), Err(e)) => {
            tracing::warn!(
                "could not raise the open-file limit (RLIMIT_NOFILE) from {soft} toward {hard}: {e}"
            );
            Some(soft)
        }
        (Err(e), _) => {
            tracing::warn!("could not read the open-file limit (RLIMIT_NOFILE): {e}");
            None
        }
    };
    let Some(limit) = limit else {
        return max_connections;
    };
    let fits = cap_for(limit);
    if max_connections > fits {
        tracing::warn!(
            "max_connections lowered from {max_connections} to {fits} to fit the open-file limit of {limit} (raise the hard limit, e.g. LimitNOFILE= for systemd or `ulimit -Hn`, to allow more)"
        );
        return fits;
    }
    max_connections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_rest_of_the_process() {
        assert_eq!(cap_for(1024), 768);
        assert_eq!(cap_for(256), 192);
        assert_eq!(cap_for(100), 36);
        assert_eq!(cap_for(20), 16);
        assert_eq!(cap_for(1_048_576), 786_432);
    }
}
