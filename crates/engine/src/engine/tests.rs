//! Unit tests of the engine: its injected clock.

use super::*;
use claimdb_model::DocPath;
use claimdb_model::json::DecodedWrite;

/// The rules see `request.time` from the engine's clock, for reads and for writes: a test moves
/// the time instead of waiting for it.
#[tokio::test]
async fn request_time_comes_from_the_engines_clock() {
    use std::time::{Duration, UNIX_EPOCH};

    use claimdb_identity::io::ManualClock;

    let rules = Ruleset::compile(
        "rules_version = '2';
         service cloud.firestore {
           match /databases/{database}/documents {
             match /notes/{id} {
               allow read, write: if request.time < timestamp.date(2000, 1, 1);
             }
           }
         }",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(claimdb_store::SqliteStore::open(dir.path()).unwrap());
    // 1999-12-31T23:59:59Z.
    let manual = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(946_684_799),
    ));
    let mut options = EngineOptions::new(rules, "test");
    options.clock = Clock::new(manual.clone());
    let engine = Engine::new(store, options);
    let ctx = RequestContext::new("r1");
    let path = DocPath::parse("notes/a").unwrap();
    engine
        .create(&ctx, path.clone(), DecodedWrite::default())
        .await
        .unwrap();
    engine.get(&ctx, &path).await.unwrap();
    manual.advance(Duration::from_secs(1));
    let denied = engine.get(&ctx, &path).await.unwrap_err();
    assert_eq!(denied.code(), "permission-denied");
}
