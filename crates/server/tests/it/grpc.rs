//! The gRPC service on the server's one port, driven by the generated client over h2c: the
//! bridge between messages and the proto3 JSON the shared RPC table takes (int64, bytes,
//! timestamps with nanoseconds, null, NaN and the infinities, references, geo points, nested
//! values, an empty `Value` refused), documents written over gRPC read the same over REST, the
//! lazy `newTransaction` of a first read and an aborted commit, and errors as status codes.

use std::collections::HashMap;
use std::sync::Arc;

use claimdb_engine::Engine;
use claimdb_firestore_proto::google::r#type::LatLng;
use claimdb_firestore_proto::v1::firestore_client::FirestoreClient;
use claimdb_firestore_proto::v1::value::ValueType;
use claimdb_firestore_proto::v1::{self as pb, batch_get_documents_response as batch_get};
use claimdb_firestore_proto::well_known::Timestamp;
use claimdb_server::ServerConfig;
use claimdb_store::{SqliteStore, Store};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio_stream::StreamExt as _;
use tonic::Code;

type Channel = Client<HttpConnector, tonic::body::Body>;

pub(crate) const DB: &str = "projects/demo-claimdb/databases/(default)";
const DOCS: &str = "projects/demo-claimdb/databases/(default)/documents";

/// A server on 127.0.0.1:0 with open rules, and a client of it.
pub(crate) struct Fixture {
    pub(crate) client: FirestoreClient<Channel>,
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub(crate) async fn start(config: ServerConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let engine = Arc::new(Engine::new(
        store as Arc<dyn Store>,
        crate::util::open_rules(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(claimdb_server::run(listener, engine, None, config, async {
        let _ = stopped.await;
    }));
    let channel: Channel = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let base = format!("http://{addr}");
    let client = FirestoreClient::with_origin(channel, base.parse().unwrap());
    Fixture {
        client,
        base,
        stop: Some(stop),
        _dir: dir,
    }
}

pub(crate) fn value(v: ValueType) -> pb::Value {
    pb::Value {
        value_type: Some(v),
    }
}

pub(crate) fn name(path: &str) -> String {
    format!("{DOCS}/{path}")
}

/// A commit of one document set to `fields`.
fn set(path: &str, fields: HashMap<String, pb::Value>) -> pb::CommitRequest {
    pb::CommitRequest {
        database: DB.into(),
        writes: vec![pb::Write {
            operation: Some(pb::write::Operation::Update(pb::Document {
                name: name(path),
                fields,
                ..Default::default()
            })),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn get(path: &str) -> pb::GetDocumentRequest {
    pb::GetDocumentRequest {
        name: name(path),
        ..Default::default()
    }
}

/// Every kind of value, with the edges of the proto3-JSON bridge.
fn every_kind() -> HashMap<String, pb::Value> {
    let fields = [
        ("null", ValueType::NullValue(0)),
        ("yes", ValueType::BooleanValue(true)),
        ("max", ValueType::IntegerValue(i64::MAX)),
        ("min", ValueType::IntegerValue(i64::MIN)),
        ("half", ValueType::DoubleValue(0.5)),
        ("nan", ValueType::DoubleValue(f64::NAN)),
        ("minus_inf", ValueType::DoubleValue(f64::NEG_INFINITY)),
        (
            "when",
            ValueType::TimestampValue(Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789,
            }),
        ),
        ("text", ValueType::StringValue("héllo \u{1F600}".into())),
        ("bytes", ValueType::BytesValue(vec![0, 255, 1, 254, 62, 63])),
        ("ref", ValueType::ReferenceValue(name("other/doc"))),
        (
            "geo",
            ValueType::GeoPointValue(LatLng {
                latitude: -33.5,
                longitude: 151.25,
            }),
        ),
        (
            "list",
            ValueType::ArrayValue(pb::ArrayValue {
                values: vec![
                    value(ValueType::NullValue(0)),
                    value(ValueType::IntegerValue(-1)),
                ],
            }),
        ),
        (
            "map",
            ValueType::MapValue(pb::MapValue {
                fields: [("inner".to_string(), value(ValueType::NullValue(0)))]
                    .into_iter()
                    .collect(),
            }),
        ),
    ];
    fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), value(v)))
        .collect()
}

#[tokio::test]
async fn values_cross_the_bridge_exactly_and_read_the_same_over_rest() {
    let mut f = start(ServerConfig::default()).await;
    let commit = f
        .client
        .commit(set("kinds/k1", every_kind()))
        .await
        .unwrap();
    let commit = commit.into_inner();
    assert_eq!(commit.write_results.len(), 1);
    assert!(commit.commit_time.is_some());

    let doc = f.client.get_document(get("kinds/k1")).await.unwrap();
    let doc = doc.into_inner();
    assert_eq!(doc.name, name("kinds/k1"));
    let update_time = doc.update_time.unwrap();
    assert_eq!(update_time.nanos % 1_000, 0, "microsecond-precise");
    let mut expected = every_kind();
    // Timestamps keep microseconds (finer digits are dropped, as Firestore does).
    expected.insert(
        "when".into(),
        value(ValueType::TimestampValue(Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_456_000,
        })),
    );
    for (field, want) in &expected {
        let got = &doc.fields[field];
        match (&got.value_type, &want.value_type) {
            (Some(ValueType::DoubleValue(a)), Some(ValueType::DoubleValue(b))) if b.is_nan() => {
                assert!(a.is_nan(), "{field}: {a}");
            }
            _ => assert_eq!(got, want, "{field}"),
        }
    }
    assert_eq!(doc.fields.len(), expected.len());

    // The same document over REST, as proto3 JSON.
    let (status, json) = rest_get(&f.base, "kinds/k1").await;
    assert_eq!(status, 200, "{json}");
    let fields = &json["fields"];
    assert_eq!(fields["max"]["integerValue"], "9223372036854775807");
    assert_eq!(fields["nan"]["doubleValue"], "NaN");
    assert_eq!(fields["minus_inf"]["doubleValue"], "-Infinity");
    assert_eq!(fields["bytes"]["bytesValue"], "AP8B/j4/");
    assert_eq!(
        fields["when"]["timestampValue"],
        "2023-11-14T22:13:20.123456Z"
    );
    assert_eq!(fields["null"], serde_json::json!({"nullValue": null}));
    assert_eq!(fields["ref"]["referenceValue"], name("other/doc"));

    // A batch read: found and missing, in order, each with its read time.
    let request = pb::BatchGetDocumentsRequest {
        database: DB.into(),
        documents: vec![name("kinds/k1"), name("kinds/none")],
        ..Default::default()
    };
    let mut stream = f
        .client
        .batch_get_documents(request)
        .await
        .unwrap()
        .into_inner();
    let mut results = Vec::new();
    while let Some(message) = stream.next().await {
        results.push(message.unwrap());
    }
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.read_time.is_some()));
    // (NaN is not equal to itself: compared by name, version and size.)
    let Some(batch_get::Result::Found(found)) = &results[0].result else {
        panic!("{:?}", results[0]);
    };
    assert_eq!(
        (&found.name, found.update_time, found.fields.len()),
        (&doc.name, Some(update_time), doc.fields.len())
    );
    assert_eq!(found.fields["max"], doc.fields["max"]);
    assert_eq!(
        results[1].result,
        Some(batch_get::Result::Missing(name("kinds/none")))
    );
}

/// A REST read over HTTP/1.1 on the same port.
async fn rest_get(base: &str, path: &str) -> (u16, serde_json::Value) {
    let client: Client<HttpConnector, http_body_util::Empty<axum::body::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let url = format!("{base}/v1/{DOCS}/{path}");
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.version(), axum::http::Version::HTTP_11);
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

/// A `Value` with no type has no meaning: refused before anything is written.
#[tokio::test]
async fn an_empty_value_is_invalid_and_nothing_is_written() {
    let mut f = start(ServerConfig::default()).await;
    let mut fields = every_kind();
    fields.insert("empty".into(), pb::Value { value_type: None });
    let e = f.client.commit(set("kinds/bad", fields)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("exactly one field"), "{}", e.message());
    let e = f.client.get_document(get("kinds/bad")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
}

/// The Node SDKs' lazy transaction: the first read begins it (`newTransaction`) and its first
/// answer carries the id; a commit with it fails ABORTED when a document read changed.
#[tokio::test]
async fn a_first_read_begins_the_transaction_and_a_changed_read_aborts_its_commit() {
    let mut f = start(ServerConfig::default()).await;
    let counter = |n: i64| {
        [("n".to_string(), value(ValueType::IntegerValue(n)))]
            .into_iter()
            .collect::<HashMap<_, _>>()
    };
    f.client.commit(set("tx/a", counter(1))).await.unwrap();
    for conflict in [false, true] {
        let request = pb::BatchGetDocumentsRequest {
            database: DB.into(),
            documents: vec![name("tx/a")],
            consistency_selector: Some(
                pb::batch_get_documents_request::ConsistencySelector::NewTransaction(
                    pb::TransactionOptions::default(),
                ),
            ),
            ..Default::default()
        };
        let mut stream = f
            .client
            .batch_get_documents(request)
            .await
            .unwrap()
            .into_inner();
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.transaction.len(), 16, "{first:?}");
        assert!(first.result.is_none());
        let read = stream.next().await.unwrap().unwrap();
        assert!(matches!(read.result, Some(batch_get::Result::Found(_))));
        assert!(stream.next().await.is_none());
        if conflict {
            f.client.commit(set("tx/a", counter(100))).await.unwrap();
        }
        let mut commit = set("tx/a", counter(2));
        commit.transaction = first.transaction.clone();
        let answer = f.client.commit(commit).await;
        if conflict {
            let e = answer.unwrap_err();
            assert_eq!(e.code(), Code::Aborted, "{e:?}");
        } else {
            answer.unwrap();
        }
    }
    let doc = f
        .client
        .get_document(get("tx/a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(doc.fields["n"], value(ValueType::IntegerValue(100)));
}

/// Errors are status codes with the names REST uses; the streams not served yet say so.
#[tokio::test]
async fn errors_are_status_codes() {
    let mut f = start(ServerConfig::default()).await;
    let other = pb::GetDocumentRequest {
        name: "projects/elsewhere/databases/(default)/documents/c/d".into(),
        ..Default::default()
    };
    let e = f.client.get_document(other).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = f.client.get_document(get("c")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    let mut bad_auth = tonic::Request::new(get("c/d"));
    bad_auth
        .metadata_mut()
        .insert("authorization", "Basic abc".parse().unwrap());
    let e = f.client.get_document(bad_auth).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    let mut not_a_jwt = tonic::Request::new(get("c/d"));
    not_a_jwt
        .metadata_mut()
        .insert("authorization", "Bearer owner".parse().unwrap());
    let e = f.client.get_document(not_a_jwt).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    // The database may come from the metadata when the request names none.
    let mut rollback = tonic::Request::new(pb::RollbackRequest {
        transaction: vec![0; 16],
        ..Default::default()
    });
    rollback
        .metadata_mut()
        .insert("google-cloud-resource-prefix", DB.parse().unwrap());
    let e = f.client.rollback(rollback).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("expired"), "{}", e.message());
    let e = f
        .client
        .rollback(pb::RollbackRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("names no database"), "{}", e.message());
}

/// A message over `max_body_bytes` is refused, as a REST body over it is.
#[tokio::test]
async fn messages_are_limited_like_bodies() {
    let config = ServerConfig {
        max_body_bytes: 64 * 1024,
        ..ServerConfig::default()
    };
    let mut f = start(config).await;
    let big = [(
        "s".to_string(),
        value(ValueType::StringValue("x".repeat(100 * 1024))),
    )];
    let e = f
        .client
        .commit(set("big/b", big.into_iter().collect()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    let small = [("s".to_string(), value(ValueType::StringValue("x".into())))];
    f.client
        .commit(set("big/b", small.into_iter().collect()))
        .await
        .unwrap();
}
