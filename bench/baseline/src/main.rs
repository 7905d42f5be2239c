//! The native baseline of `cargo xtask bench`: what a minimal hand-written
//! receiver does for a GitHub push, with no sandbox.
//!
//! ```sh
//! hookhost-baseline serve --listen 127.0.0.1:18090 --secret SECRET
//! hookhost-baseline sign --secret SECRET --file push.json   # prints sha256=…
//! ```
//!
//! It does the work of the bench's scenario (b), natively: checks
//! `X-Hub-Signature-256` (HMAC-SHA256 of the body, compared in constant time),
//! parses the push JSON into the same fields the `github` example plugin reads,
//! and answers the same small JSON summary. It runs on the same tokio flavour
//! (multi-thread, one worker per CPU it may use) and the same hyper connection
//! builder as hookhost, so the bench's hookhost/baseline ratio is the cost of
//! everything hookhost adds: routing, ingress checks, the delivery record and
//! the fresh WebAssembly instance per request.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Same default body limit as hookhost's `--max-body`.
const MAX_BODY: usize = 1 << 20;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let secret = flag("--secret").context("--secret SECRET is required")?;
    match args.first().map(String::as_str) {
        Some("serve") => {
            let listen: SocketAddr = flag("--listen")
                .unwrap_or_else(|| "127.0.0.1:18090".into())
                .parse()
                .context("--listen ADDR")?;
            serve(listen, secret.into_bytes())
        }
        Some("sign") => {
            let file = flag("--file").context("--file PATH is required")?;
            let body = std::fs::read(&file).with_context(|| format!("cannot read {file}"))?;
            println!("sha256={}", hex::encode(sign(secret.as_bytes(), &body)));
            Ok(())
        }
        _ => anyhow::bail!("usage: hookhost-baseline serve|sign --secret SECRET [...]"),
    }
}

fn serve(listen: SocketAddr, secret: Vec<u8>) -> anyhow::Result<()> {
    // The same flavour as `hookhost serve`: multi-thread, one worker per CPU
    // this process may run on (one, when the bench pins it with taskset).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        println!("listening on http://{}", listener.local_addr()?);
        let secret: &'static [u8] = Box::leak(secret.into_boxed_slice());
        let builder: &'static auto::Builder<TokioExecutor> =
            Box::leak(Box::new(auto::Builder::new(TokioExecutor::new())));
        loop {
            let (stream, _peer) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(move |request| async move {
                    Ok::<_, Infallible>(handle(request, secret).await)
                });
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn handle(request: Request<Incoming>, secret: &[u8]) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
        return answer(StatusCode::PAYLOAD_TOO_LARGE, r#"{"error":"body"}"#.into());
    };
    let body = body.to_bytes();
    let signature = parts
        .headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|v| hex::decode(v).ok());
    let expected = sign(secret, &body);
    if !signature.is_some_and(|s| bool::from(expected.as_slice().ct_eq(&s))) {
        return answer(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"bad signature"}"#.into(),
        );
    }
    if parts
        .headers
        .get("x-github-event")
        .is_none_or(|v| v != "push")
    {
        return answer(StatusCode::NO_CONTENT, String::new());
    }
    let Ok(push) = serde_json::from_slice::<Push<'_>>(&body) else {
        return answer(StatusCode::BAD_REQUEST, r#"{"error":"bad push"}"#.into());
    };
    let summary = PushSummary {
        event: "push",
        git_ref: push.git_ref,
        commits: push.commits.len(),
        repository: push.repository.full_name,
    };
    let json = serde_json::to_string(&summary).expect("a summary always serialises");
    answer(StatusCode::OK, json)
}

fn sign(secret: &[u8], body: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a static response is valid")
}

/// The fields the `github` example plugin reads from a push.
#[derive(Deserialize)]
struct Push<'a> {
    #[serde(rename = "ref")]
    git_ref: &'a str,
    commits: Vec<IgnoredAny>,
    repository: Repository<'a>,
}

#[derive(Deserialize)]
struct Repository<'a> {
    full_name: &'a str,
}

#[derive(Serialize)]
struct PushSummary<'a> {
    event: &'static str,
    #[serde(rename = "ref")]
    git_ref: &'a str,
    commits: usize,
    repository: &'a str,
}
