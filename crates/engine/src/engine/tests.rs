//! Unit tests of the engine: its injected clock, and single writes as batches of one.

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

/// A single write is a batch of one: decided on the same path, but its errors name no write
/// (a batch's name the failing one), and a precondition that fails is `failed-precondition`.
#[tokio::test]
async fn single_writes_are_batches_of_one_whose_errors_name_no_write() {
    use claimdb_store::{Precondition, Write, WriteOp};

    let rules = Ruleset::compile(
        "rules_version = '2';
         service cloud.firestore {
           match /databases/{database}/documents {
             match /notes/{id} {
               allow read: if true;
               allow write: if request.resource.data.get('ok', false) == true;
             }
           }
         }",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(claimdb_store::SqliteStore::open(dir.path()).unwrap());
    let engine = Engine::new(store, EngineOptions::new(rules, "test"));
    let ctx = RequestContext::new("r1");
    let path = DocPath::parse("notes/a").unwrap();
    let data = |ok: bool| {
        let mut d = DecodedWrite::default();
        d.data.insert("ok".into(), claimdb_model::Value::Bool(ok));
        d
    };
    let denied = engine
        .set(&ctx, path.clone(), data(false), Precondition::None)
        .await
        .unwrap_err();
    assert_eq!(
        (denied.code(), denied.write_index()),
        ("permission-denied", None)
    );
    let batch = vec![Write::new(
        path.clone(),
        WriteOp::Set {
            data: data(false).data,
            transforms: vec![],
        },
    )];
    let denied = engine.batch(&ctx, batch).await.unwrap_err();
    assert_eq!(
        (denied.code(), denied.write_index()),
        ("permission-denied", Some(0))
    );
    let created = engine
        .set(&ctx, path.clone(), data(true), Precondition::Missing)
        .await
        .unwrap();
    assert!(created.created);
    let again = engine
        .set(&ctx, path.clone(), data(true), Precondition::Missing)
        .await
        .unwrap_err();
    assert_eq!(
        (again.code(), again.write_index()),
        ("failed-precondition", None)
    );
    let stale = engine
        .set(
            &ctx,
            path.clone(),
            data(true),
            Precondition::Version(created.document.version + 7),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (stale.code(), stale.write_index()),
        ("failed-precondition", None)
    );
}
