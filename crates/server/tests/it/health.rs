//! `/healthz`, `/readyz`, and serving through `run` on a real socket with graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use claimdb_engine::Engine;
use claimdb_server::ServerConfig;
use claimdb_store::{SqliteStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::TestApp;

#[tokio::test]
async fn healthz_and_readyz() {
    let app = TestApp::new();
    let r = app.get("/healthz").await;
    assert_eq!(
        (r.status.as_u16(), r.json.clone()),
        (200, serde_json::json!({"status": "ok"}))
    );
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "ready");
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn run_serves_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let engine = Arc::new(Engine::new(
        store as Arc<dyn Store>,
        crate::util::open_rules(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(claimdb_server::run(
        listener,
        engine,
        None,
        ServerConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let response = http_get(addr, "/readyz").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("x-request-id:"),
        "{response}"
    );
    let response = http_get(addr, "/nope").await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    assert!(response.contains(r#""code":"not-found""#), "{response}");
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

/// One port serves HTTP/1.1 and HTTP/2 with prior knowledge (h2c), which the gRPC front end
/// will rely on; both answer through the same router.
#[tokio::test]
async fn run_serves_http1_and_h2c_on_one_port() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let engine = Arc::new(Engine::new(
        store as Arc<dyn Store>,
        crate::util::open_rules(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(claimdb_server::run(
        listener,
        engine,
        None,
        ServerConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let response = http_get(addr, "/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let driver = tokio::spawn(connection);
    for path in ["/healthz", "/v1/docs/h2/missing"] {
        let request = axum::http::Request::get(format!("http://{addr}{path}"))
            .body(http_body_util::Empty::<axum::body::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.version(), axum::http::Version::HTTP_2);
        let status = response.status().as_u16();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        match path {
            "/healthz" => assert_eq!((status, text.as_ref()), (200, r#"{"status":"ok"}"#)),
            _ => assert!(
                status == 404 && text.contains("not-found"),
                "{status} {text}"
            ),
        }
    }
    // Shutdown tells the HTTP/2 client with GOAWAY and finishes.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("the HTTP/2 connection ends after GOAWAY")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_decisions() {
    let app = crate::util::TestApp::new();
    let r = app.get("/v1/docs/m/1").await;
    assert_eq!(r.status.as_u16(), 404);
    let r = app.get("/metrics").await;
    assert_eq!(r.status.as_u16(), 200);
    assert!(r.text.contains("claimdb_http_requests_total"), "{}", r.text);
    assert!(r.text.contains("route=\"/v1/docs/{*path}\""), "{}", r.text);
    assert!(
        r.text.contains("claimdb_rules_decisions_total"),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("claimdb_http_request_duration_seconds_bucket"),
        "{}",
        r.text
    );
    // The concrete document path never becomes a label.
    assert!(!r.text.contains("/v1/docs/m/1"), "{}", r.text);
    // Each request counts (the series' handles are kept after the first request; other tests
    // in this process may add to the same series meanwhile, never subtract).
    let count = |text: &str| -> f64 {
        text.lines()
            .find(|l| {
                l.starts_with("claimdb_http_requests_total{")
                    && l.contains("route=\"/v1/docs/{*path}\"")
                    && l.contains("status=\"404\"")
                    && l.contains("method=\"GET\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    let before = count(&r.text);
    assert!(before >= 1.0, "{}", r.text);
    for _ in 0..3 {
        assert_eq!(app.get("/v1/docs/m/2").await.status.as_u16(), 404);
    }
    let after = count(&app.get("/metrics").await.text);
    assert!(after >= before + 3.0, "{before} -> {after}");
}
