//! Unit tests of the engine's write conditions and precondition errors.

use super::*;

#[test]
fn conditional_writes_fail_with_failed_precondition() {
    let nf = EngineError::not_found("gone");
    assert_eq!(
        conditional(nf.clone(), Precondition::Version(3)).code(),
        "failed-precondition"
    );
    assert_eq!(
        conditional(nf.clone(), Precondition::Exists).code(),
        "failed-precondition"
    );
    assert_eq!(conditional(nf, Precondition::None).code(), "not-found");
    let ae = EngineError::AlreadyExists {
        message: "there".into(),
        write_index: Some(2),
    };
    let e = conditional(ae.clone(), Precondition::Missing);
    assert_eq!(
        (e.code(), e.write_index()),
        ("failed-precondition", Some(2))
    );
    assert_eq!(conditional(ae, Precondition::None).code(), "already-exists");
}

#[test]
fn write_conditions_come_from_preconditions() {
    assert_eq!(
        WriteCondition::from(Precondition::Version(4)),
        WriteCondition::VersionIn(vec![4])
    );
    assert_eq!(
        WriteCondition::from(Precondition::Missing),
        WriteCondition::Missing
    );
}

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
