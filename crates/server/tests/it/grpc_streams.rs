//! `Listen` and `Write`, the bidirectional streams, over gRPC with the generated client: the
//! messages survive the bridge to and from proto3 JSON (target ids, oneofs, resume and stream
//! tokens as bytes, read and commit times, a `google.rpc.Status` cause), a write on the Write
//! stream reaches a listener on the Listen stream, a failed commit ends the Write stream with
//! its code, and a stream that names another database or sends no target fails with its status.

use std::collections::HashMap;

use claimdb_firestore_proto::v1::value::ValueType;
use claimdb_firestore_proto::v1::{
    self as pb, listen_request, listen_response, target, target_change,
};
use claimdb_server::ServerConfig;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::grpc::{DB, name, start, value};

fn add(id: i32, target_type: target::TargetType) -> pb::ListenRequest {
    pb::ListenRequest {
        database: DB.into(),
        target_change: Some(listen_request::TargetChange::AddTarget(pb::Target {
            target_id: id,
            target_type: Some(target_type),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn documents(paths: &[&str]) -> target::TargetType {
    target::TargetType::Documents(target::DocumentsTarget {
        documents: paths.iter().map(|p| name(p)).collect(),
    })
}

/// A response in one line: `ADD [2]`, `documentChange rooms/r1 [2]`, ….
fn summary(r: &pb::ListenResponse) -> String {
    match &r.response_type {
        Some(listen_response::ResponseType::TargetChange(tc)) => {
            let kind = target_change::TargetChangeType::try_from(tc.target_change_type)
                .map_or("?", |k| k.as_str_name());
            format!("{kind} {:?}", tc.target_ids)
        }
        Some(listen_response::ResponseType::DocumentChange(dc)) => {
            let doc = dc.document.as_ref().map_or("", |d| d.name.as_str());
            let path = doc.rsplit("/documents/").next().unwrap_or_default();
            format!("documentChange {path} {:?}", dc.target_ids)
        }
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn a_write_on_the_write_stream_reaches_a_listener_on_the_listen_stream() {
    let mut f = start(ServerConfig::default()).await;
    let (listen_tx, listen_rx) = mpsc::channel(8);
    let mut listen = f
        .client
        .listen(ReceiverStream::new(listen_rx))
        .await
        .unwrap()
        .into_inner();
    listen_tx
        .send(add(2, documents(&["rooms/r1"])))
        .await
        .unwrap();
    let mut next = async || listen.message().await.unwrap().unwrap();
    assert_eq!(summary(&next().await), "ADD [2]");
    let current = next().await;
    assert_eq!(summary(&current), "CURRENT [2]");
    let Some(listen_response::ResponseType::TargetChange(tc)) = &current.response_type else {
        unreachable!()
    };
    assert!(!tc.resume_token.is_empty());
    let global = next().await;
    assert_eq!(summary(&global), "NO_CHANGE []");
    let Some(listen_response::ResponseType::TargetChange(tc)) = &global.response_type else {
        unreachable!()
    };
    let first_read = tc.read_time.unwrap();

    // The Write stream: the handshake, then a write with a transform.
    let (write_tx, write_rx) = mpsc::channel(8);
    let mut write = f
        .client
        .write(ReceiverStream::new(write_rx))
        .await
        .unwrap()
        .into_inner();
    write_tx
        .send(pb::WriteRequest {
            database: DB.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let handshake = write.message().await.unwrap().unwrap();
    assert!(!handshake.stream_id.is_empty() && !handshake.stream_token.is_empty());
    assert!(handshake.write_results.is_empty());
    let fields = HashMap::from([("n".to_string(), value(ValueType::IntegerValue(1)))]);
    let set = pb::Write {
        operation: Some(pb::write::Operation::Update(pb::Document {
            name: name("rooms/r1"),
            fields,
            ..Default::default()
        })),
        update_transforms: vec![pb::document_transform::FieldTransform {
            field_path: "n".into(),
            transform_type: Some(
                pb::document_transform::field_transform::TransformType::Increment(value(
                    ValueType::IntegerValue(41),
                )),
            ),
        }],
        ..Default::default()
    };
    write_tx
        .send(pb::WriteRequest {
            stream_token: handshake.stream_token.clone(),
            writes: vec![set],
            ..Default::default()
        })
        .await
        .unwrap();
    let written = write.message().await.unwrap().unwrap();
    assert_eq!(written.stream_id, handshake.stream_id);
    assert_ne!(written.stream_token, handshake.stream_token);
    assert_eq!(written.write_results.len(), 1);
    assert_eq!(
        written.write_results[0].transform_results[0].value_type,
        Some(ValueType::IntegerValue(42))
    );
    let commit_time = written.commit_time.unwrap();

    // The listener sees it, with a read time not before the commit.
    let change = next().await;
    assert_eq!(summary(&change), "documentChange rooms/r1 [2]");
    let Some(listen_response::ResponseType::DocumentChange(dc)) = &change.response_type else {
        unreachable!()
    };
    let doc = dc.document.as_ref().unwrap();
    assert_eq!(
        doc.fields["n"].value_type,
        Some(ValueType::IntegerValue(42))
    );
    assert_eq!(doc.update_time, Some(commit_time));
    assert_eq!(summary(&next().await), "NO_CHANGE [2]");
    let global = next().await;
    let Some(listen_response::ResponseType::TargetChange(tc)) = &global.response_type else {
        unreachable!()
    };
    let read = tc.read_time.unwrap();
    assert!((read.seconds, read.nanos) >= (commit_time.seconds, commit_time.nanos));
    assert!((read.seconds, read.nanos) >= (first_read.seconds, first_read.nanos));

    // A malformed query target is refused alone, with a google.rpc.Status cause.
    let bad = target::TargetType::Query(target::QueryTarget {
        parent: name("rooms"),
        query_type: None,
    });
    listen_tx.send(add(3, bad)).await.unwrap();
    let removed = next().await;
    assert_eq!(summary(&removed), "REMOVE [3]");
    let Some(listen_response::ResponseType::TargetChange(tc)) = &removed.response_type else {
        unreachable!()
    };
    assert_eq!(
        tc.cause.as_ref().unwrap().code,
        Code::InvalidArgument as i32
    );

    listen_tx
        .send(pb::ListenRequest {
            target_change: Some(listen_request::TargetChange::RemoveTarget(2)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(summary(&next().await), "REMOVE [2]");
    // Half-closing ends the stream.
    drop(listen_tx);
    assert!(listen.message().await.unwrap().is_none());

    // A commit that fails ends the Write stream with its code.
    let mut create = pb::Write {
        operation: Some(pb::write::Operation::Update(pb::Document {
            name: name("rooms/r1"),
            ..Default::default()
        })),
        current_document: Some(pb::Precondition {
            condition_type: Some(pb::precondition::ConditionType::Exists(false)),
        }),
        ..Default::default()
    };
    create.update_transforms.clear();
    write_tx
        .send(pb::WriteRequest {
            stream_token: written.stream_token.clone(),
            writes: vec![create],
            ..Default::default()
        })
        .await
        .unwrap();
    let e = write.message().await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
}

#[tokio::test]
async fn a_stream_for_another_database_or_without_a_target_fails_with_its_status() {
    let mut f = start(ServerConfig::default()).await;
    let other = pb::ListenRequest {
        database: "projects/other/databases/(default)".into(),
        ..add(2, documents(&["rooms/r1"]))
    };
    let mut listen = f
        .client
        .listen(tokio_stream::iter(vec![other]))
        .await
        .unwrap()
        .into_inner();
    let e = listen.message().await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    let no_target = pb::ListenRequest {
        database: DB.into(),
        ..Default::default()
    };
    let mut listen = f
        .client
        .listen(tokio_stream::iter(vec![no_target]))
        .await
        .unwrap()
        .into_inner();
    let e = listen.message().await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    let mut write = f
        .client
        .write(tokio_stream::iter(vec![pb::WriteRequest::default()]))
        .await
        .unwrap()
        .into_inner();
    let e = write.message().await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("database"), "{e:?}");
}

/// Regression: a bidirectional stream's request body stays open for the stream's life, so the
/// body-read timeout (meant for a request body that trickles in) ended every Listen stream
/// `body_read_timeout` after it opened. Streams are exempt; a listener outlives it.
#[tokio::test]
async fn a_listen_stream_outlives_the_body_read_timeout() {
    let config = ServerConfig {
        body_read_timeout: std::time::Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let mut f = start(config).await;
    let (listen_tx, listen_rx) = mpsc::channel(8);
    let mut listen = f
        .client
        .listen(ReceiverStream::new(listen_rx))
        .await
        .unwrap()
        .into_inner();
    listen_tx
        .send(add(2, documents(&["rooms/late"])))
        .await
        .unwrap();
    for expected in ["ADD [2]", "CURRENT [2]", "NO_CHANGE []"] {
        assert_eq!(summary(&listen.message().await.unwrap().unwrap()), expected);
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let fields = HashMap::from([("n".to_string(), value(ValueType::IntegerValue(1)))]);
    f.client
        .commit(pb::CommitRequest {
            database: DB.into(),
            writes: vec![pb::Write {
                operation: Some(pb::write::Operation::Update(pb::Document {
                    name: name("rooms/late"),
                    fields,
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let change = listen.message().await.unwrap().unwrap();
    assert_eq!(summary(&change), "documentChange rooms/late [2]");
    drop(listen_tx);
}
