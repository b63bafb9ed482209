//! The benchmark baseline: a bare hyper 1 HTTP/1.1 server answering every request with the same
//! small JSON body, nothing else. `bench/http.sh` runs it beside claimdb in the same run so
//! claimdb's point-read throughput can be quoted as a ratio of what the HTTP stack alone does.
//! Usage: `cargo run --release -p claimdb-server --example bare_hyper -- 127.0.0.1:18788`
#![allow(clippy::expect_used)]

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const BODY: &str = r#"{"path":"bench/d1","data":{"n":1,"owner":"u1","tags":["a","b"],"title":"benchmark document"},"create_time":"2026-01-01T00:00:00.000000Z","update_time":"2026-01-01T00:00:00.000000Z","version":1}"#;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18788".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("bare hyper listening on http://{addr}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                        .expect("static response"),
                )
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
