//! The engine's one source of time. Every time the engine reads — `request.time` for the rules
//! and the time writes are simulated at, audit events, the bearer-token check, key readiness,
//! revocation boundaries, user records' creation time, rules versions' timestamps — comes from
//! the [`Clock`] the [`Engine`](crate::Engine) holds, so a test sets the time instead of waiting
//! for it.
//!
//! The source is identity's injected clock trait ([`claimdb_identity::io::Clock`]), so one test
//! double ([`ManualClock`](claimdb_identity::io::ManualClock)) moves both the verifier's and the
//! engine's time. Not here: durations the engine waits for (`tokio::time`, which tests pause),
//! the store's commit time (the store's own).

use std::sync::Arc;
use std::time::SystemTime;

use claimdb_identity::io::{Clock as TimeSource, SystemClock};
use claimdb_model::Timestamp;

/// The wall clock the engine reads; cheap to clone.
#[derive(Clone)]
pub struct Clock(Arc<dyn TimeSource>);

impl Clock {
    /// The real wall clock.
    pub fn system() -> Self {
        Clock(Arc::new(SystemClock))
    }

    /// A clock reading `source` (in tests, a [`ManualClock`](claimdb_identity::io::ManualClock)).
    pub fn new(source: Arc<dyn TimeSource>) -> Self {
        Clock(source)
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        self.0.now()
    }

    /// The current time as a document timestamp (microseconds).
    pub fn timestamp(&self) -> Timestamp {
        Timestamp::from_system_time(self.now())
    }

    /// The current time in Unix seconds (negative before 1970).
    pub fn unix_secs(&self) -> i64 {
        claimdb_identity::io::unix_secs(self.now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use claimdb_identity::io::ManualClock;

    use super::*;

    #[test]
    fn a_manual_clock_sets_every_reading() {
        let manual = Arc::new(ManualClock::new(
            UNIX_EPOCH + Duration::from_millis(86_400_250),
        ));
        let clock = Clock::new(manual.clone());
        assert_eq!(clock.unix_secs(), 86_400);
        assert_eq!(clock.timestamp().micros(), 86_400_250_000);
        manual.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_millis(86_401_250));
    }
}
