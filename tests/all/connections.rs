//! Connections that make no progress are closed: silent TCP, half an HTTP/2
//! preface, a TLS handshake and then silence, an HTTP/2 connection that
//! only answers pings; and one client cannot hold every connection slot.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookhost_test_artifacts::ECHO;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ingress::tls;
use crate::support::{TestHost, plugin};

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// The bar: closed within the header timeout plus this.
const SLACK: Duration = Duration::from_secs(1);

async fn host_with(adjust: impl FnOnce(&mut hookhost::config::HostConfig)) -> TestHost {
    TestHost::start_with(&[plugin("echo", ECHO)], |config| {
        config.header_timeout = HEADER_TIMEOUT;
        adjust(config);
    })
    .await
}

/// Reads until the host closes the stream; how long that took from
/// `since`, or `None` if it is still open after `wait`.
async fn closed_after(
    stream: &mut (impl AsyncReadExt + Unpin),
    since: Instant,
    wait: Duration,
) -> Option<Duration> {
    let mut sink = Vec::new();
    match tokio::time::timeout(wait, stream.read_to_end(&mut sink)).await {
        // A reset is a close too.
        Ok(_) => Some(since.elapsed()),
        Err(_) => None,
    }
}

fn assert_closed_in_time(closed: Option<Duration>, what: &str) {
    let closed = closed.unwrap_or_else(|| panic!("{what}: still open"));
    assert!(
        closed <= HEADER_TIMEOUT + SLACK,
        "{what}: closed only after {closed:?}"
    );
    assert!(
        closed >= HEADER_TIMEOUT - Duration::from_millis(100),
        "{what}: closed before the header timeout, after {closed:?}"
    );
}

#[tokio::test]
async fn a_silent_tcp_connection_is_closed_within_the_header_timeout() {
    let host = host_with(|_| {}).await;
    let connected = Instant::now();
    let mut stream = TcpStream::connect(host.addr).await.unwrap();
    let closed = closed_after(&mut stream, connected, Duration::from_secs(5)).await;
    assert_closed_in_time(closed, "silent TCP");
    host.stop().await;
}

#[tokio::test]
async fn a_partial_http2_preface_is_closed_within_the_header_timeout() {
    let host = host_with(|_| {}).await;
    let connected = Instant::now();
    let mut stream = TcpStream::connect(host.addr).await.unwrap();
    stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let closed = closed_after(&mut stream, connected, Duration::from_secs(5)).await;
    assert_closed_in_time(closed, "partial preface");
    host.stop().await;
}

#[tokio::test]
async fn an_http2_connection_without_a_request_is_closed_within_the_header_timeout() {
    let host = host_with(|_| {}).await;
    let connected = Instant::now();
    let stream = TcpStream::connect(host.addr).await.unwrap();
    // A real HTTP/2 client: preface, settings, and it answers pings; it
    // just never opens a stream.
    let (_sender, connection) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(closed.is_ok(), "HTTP/2 without a stream: still open");
    assert_closed_in_time(Some(connected.elapsed()), "HTTP/2 without a stream");
    host.stop().await;
}

#[tokio::test]
async fn a_tls_handshake_then_silence_is_closed_within_the_header_timeout() {
    let cert = tls::certificate();
    let files = cert.files.clone();
    let host = host_with(|config| config.tls = Some(files)).await;
    let connected = Instant::now();
    let mut stream = tls::connect(host.addr, &cert.der, b"h2").await;
    let closed = closed_after(&mut stream, connected, Duration::from_secs(5)).await;
    assert_closed_in_time(closed, "TLS then silence");
    host.stop().await;
}

fn echo_request(addr: SocketAddr) -> http::Request<Full<Bytes>> {
    http::Request::post(format!("http://{addr}/hooks/echo"))
        .body(Full::new(Bytes::from_static(b"once")))
        .unwrap()
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_secs(1);
    let host = host_with(|config| config.idle_timeout = idle).await;
    let stream = TcpStream::connect(host.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    // One request keeps it alive past the header timeout...
    tokio::time::sleep(HEADER_TIMEOUT / 2).await;
    let response = sender.send_request(echo_request(host.addr)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    let answered = Instant::now();
    // ...then, with no stream open (the client still answers pings), it is
    // closed after the idle timeout, with a GOAWAY.
    let ended = tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("idle HTTP/2 connection still open");
    assert!(
        ended.unwrap().is_ok(),
        "closed gracefully (GOAWAY), not reset"
    );
    let closed = answered.elapsed();
    assert!(
        closed >= idle - Duration::from_millis(100) && closed <= idle + SLACK,
        "closed {closed:?} after the last answer"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_connection_with_a_request_in_flight_is_not_cut() {
    let host = host_with(|config| config.idle_timeout = Duration::from_millis(500)).await;
    let mut stream = TcpStream::connect(host.addr).await.unwrap();
    // The head comes in time; the body trickles in past both timeouts,
    // within the body timeout: the request is answered.
    stream
        .write_all(b"POST /hooks/echo HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\n\r\nab")
        .await
        .unwrap();
    tokio::time::sleep(HEADER_TIMEOUT + SLACK).await;
    stream.write_all(b"cd").await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.ends_with(b"abcd") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("no answer")
            .unwrap();
        assert!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    host.stop().await;
}

#[tokio::test]
async fn twenty_silent_sockets_do_not_stop_a_host_with_max_connections_20() {
    let host = host_with(|config| config.max_connections = 20).await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(host.addr).await.unwrap());
    }
    // Give the host time to accept all twenty (every slot taken).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        host.client.post(host.url("/hooks/echo")).body("x").send(),
    )
    .await
    .expect("the host is stuck behind twenty silent sockets")
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        sent.elapsed() <= HEADER_TIMEOUT + SLACK,
        "answered only after {:?}",
        sent.elapsed()
    );
    host.stop().await;
}

/// A connection from `client` (an address on the loopback /8 other than
/// 127.0.0.1 stands for another machine).
async fn connect_from(client: &str, host: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{client}:0").parse().unwrap()).unwrap();
    socket.connect(host).await.unwrap()
}

#[tokio::test]
async fn a_client_over_its_connection_cap_is_closed_at_once() {
    let host = host_with(|config| {
        config.max_connections_per_client = 3;
        config.header_timeout = Duration::from_secs(30);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.2", host.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let connected = Instant::now();
    let mut fourth = connect_from("127.0.0.2", host.addr).await;
    let closed = closed_after(&mut fourth, connected, Duration::from_secs(2)).await;
    assert!(
        closed.is_some_and(|after| after < Duration::from_secs(1)),
        "the fourth connection of one client stayed open: {closed:?}"
    );
    // The three it holds are still open, and other clients are served.
    let mut probe = [0u8; 1];
    let still_open =
        tokio::time::timeout(Duration::from_millis(200), held[0].read(&mut probe)).await;
    assert!(still_open.is_err(), "a held connection was closed");
    assert_eq!(
        host.post("/hooks/echo", "other client").await.status(),
        StatusCode::OK
    );
    // Closing one gives the client its slot back.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from("127.0.0.2", host.addr).await;
    again
        .write_all(b"POST /hooks/echo HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), again.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    host.stop().await;
}
