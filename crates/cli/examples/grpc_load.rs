//! A gRPC load generator for Firestore point reads (`bench/firestore.sh`), the gRPC counterpart
//! of its wrk scripts: CONNS HTTP/2 (h2c) connections, each with one request in flight at a
//! time, for DURATION seconds; every request takes the next `uid token` line of TOKENS (lines as
//! `bench_tokens` writes them) and reads one random document that user owns (the seed gives
//! `bench/d<i>` the owner `user<i % USERS>`). OP `get` sends `GetDocument` (unary), `batchget`
//! `BatchGetDocuments` with one name (server-streaming, what the SDKs' `get` sends). Every answer
//! is decoded and must be the document asked for, else it counts as an error.
//!
//! Prints wrk's summary lines (`N requests in`, `Requests/sec:`, the latency percentiles, and
//! `Non-2xx or Socket errors` when any), so the benchmark script reads both tools alike.
//!
//! Usage: grpc_load ADDR PROJECT TOKENS N USERS OP CONNS DURATION_SECS

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use claimdb_firestore_proto::v1::{
    BatchGetDocumentsRequest, BatchGetDocumentsResponse, Document, GetDocumentRequest,
    batch_get_documents_response,
};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Setup {
    addr: String,
    root: String,
    database: String,
    /// `(user number, "Bearer <token>")`.
    tokens: Vec<(u64, String)>,
    n: u64,
    users: u64,
    batch: bool,
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, project, tokens, n, users, op, conns, secs] = args.as_slice() else {
        return Err(
            "usage: grpc_load ADDR PROJECT TOKENS N USERS OP(get|batchget) CONNS DURATION_SECS"
                .into(),
        );
    };
    let tokens = std::fs::read_to_string(tokens)?
        .lines()
        .map(|line| {
            let (uid, token) = line.split_once(' ').ok_or("a tokens line is `uid token`")?;
            let user: u64 = uid
                .trim_start_matches(|c: char| !c.is_ascii_digit())
                .parse()?;
            Ok((user, format!("Bearer {token}")))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let database = format!("projects/{project}/databases/(default)");
    let setup = Arc::new(Setup {
        addr: addr.clone(),
        root: format!("{database}/documents"),
        database,
        tokens,
        n: n.parse()?,
        users: users.parse()?,
        batch: match op.as_str() {
            "get" => false,
            "batchget" => true,
            other => return Err(format!("unknown op {other}").into()),
        },
    });
    let conns: usize = conns.parse()?;
    let duration = Duration::from_secs_f64(secs.parse()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(setup, conns, duration))
}

async fn run(setup: Arc<Setup>, conns: usize, duration: Duration) -> Result<(), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for worker in 0..conns {
        let (setup, stop, errors) = (setup.clone(), stop.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let io = TokioIo::new(tokio::net::TcpStream::connect(&setup.addr).await?);
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(connection);
            let mut i = worker * 7919;
            let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ (worker as u64);
            while !stop.load(Ordering::Relaxed) {
                i = (i + 1) % setup.tokens.len();
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let (user, token) = &setup.tokens[i];
                let k = seed % (setup.n / setup.users);
                let mut d = user + setup.users * k;
                if d == 0 {
                    d = setup.n;
                }
                let name = format!("{}/bench/d{d}", setup.root);
                let started = Instant::now();
                match read(&mut sender, &setup, token, &name).await {
                    Ok(()) => latencies.push(started.elapsed()),
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("first error: {e}");
                        }
                    }
                }
            }
            Ok::<_, Error>(latencies)
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!("Latency Distribution");
    for (label, p) in [("50%", 0.5), ("75%", 0.75), ("90%", 0.9), ("99%", 0.99)] {
        println!("     {label}  {:.2}ms", pct(p));
    }
    println!("  {} requests in {elapsed:.2}s", latencies.len());
    println!("Requests/sec: {:.2}", latencies.len() as f64 / elapsed);
    let errors = errors.load(Ordering::Relaxed);
    if errors > 0 {
        println!("  Non-2xx or Socket errors: {errors}");
    }
    Ok(())
}

/// One read; `Ok` only for a successful answer holding the document asked for.
async fn read(
    sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    setup: &Setup,
    token: &str,
    name: &str,
) -> Result<(), Error> {
    let (method, message) = if setup.batch {
        let request = BatchGetDocumentsRequest {
            database: setup.database.clone(),
            documents: vec![name.to_owned()],
            ..Default::default()
        };
        ("BatchGetDocuments", request.encode_to_vec())
    } else {
        let request = GetDocumentRequest {
            name: name.to_owned(),
            ..Default::default()
        };
        ("GetDocument", request.encode_to_vec())
    };
    let mut framed = BytesMut::with_capacity(message.len() + 5);
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len())?);
    framed.put_slice(&message);
    let request = Request::post(format!(
        "http://{}/google.firestore.v1.Firestore/{method}",
        setup.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header("authorization", token)
    .body(Full::new(framed.freeze()))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let collected = body.collect().await?;
    let status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| parts.headers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("missing")
        .to_owned();
    if status != "0" {
        return Err(format!("grpc-status {status}").into());
    }
    let mut bytes = collected.to_bytes();
    let mut found = None;
    while bytes.len() >= 5 {
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if bytes.len() < 5 + len {
            return Err("a truncated message".into());
        }
        let message = bytes.split_to(5 + len).split_off(5);
        let document = if setup.batch {
            match BatchGetDocumentsResponse::decode(message)?.result {
                Some(batch_get_documents_response::Result::Found(doc)) => Some(doc),
                _ => None,
            }
        } else {
            Some(Document::decode(message)?)
        };
        found = found.or(document);
    }
    match found {
        Some(doc) if doc.name == name => Ok(()),
        other => Err(format!("not the document asked for: {other:?}").into()),
    }
}
