//! Ingress protection through the real host: allowlists, trusted proxies,
//! rate limits, per-route body limits, slow clients, and TLS.

use std::time::{Duration, Instant};

use hookhost_test_artifacts::ECHO;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestHost, error_body, plugin, plugin_with};

#[tokio::test]
async fn allowlist_refuses_other_addresses_with_403() {
    let host = TestHost::start(&[
        plugin_with("closed", ECHO, "[ingress]\nallow = [\"192.0.2.0/24\"]\n"),
        plugin_with(
            "open",
            ECHO,
            "[ingress]\nallow = [\"127.0.0.0/8\", \"::1\"]\n",
        ),
    ])
    .await;
    let response = host.post("/hooks/closed", "x").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = error_body(response).await;
    assert_eq!(body["error"], "client address is not allowed on this route");
    assert_eq!(host.post("/hooks/open", "x").await.status(), StatusCode::OK);
    host.stop().await;
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let manifest = "[ingress]\nallow = [\"198.51.100.0/24\"]\n";
    let post_from = |host: &TestHost, forwarded: Option<&'static str>| {
        let mut request = host.client.post(host.url("/hooks/echo")).body("x");
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        request.send()
    };

    // Not trusted: the header is the client's own claim and is ignored.
    let host = TestHost::start(&[plugin_with("echo", ECHO, manifest)]).await;
    let response = post_from(&host, Some("198.51.100.7")).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    host.stop().await;

    // Trusted (the test client is the "proxy" on loopback).
    let host = TestHost::start_with(&[plugin_with("echo", ECHO, manifest)], |config| {
        config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let response = post_from(&host, Some("198.51.100.7")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A forged entry to the left of the real client changes nothing.
    let response = post_from(&host, Some("198.51.100.9, 203.0.113.5"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post_from(&host, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    host.stop().await;
}

#[tokio::test]
async fn rate_per_ip_answers_429_with_retry_after_per_client() {
    let host = TestHost::start_with(
        &[plugin_with(
            "echo",
            ECHO,
            "[ingress]\nrate_per_ip = \"3/m\"\n",
        )],
        |config| config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()],
    )
    .await;
    let from = |client: &'static str| {
        host.client
            .post(host.url("/hooks/echo"))
            .header("x-forwarded-for", client)
            .body("x")
            .send()
    };
    for _ in 0..3 {
        assert_eq!(from("192.0.2.1").await.unwrap().status(), StatusCode::OK);
    }
    let limited = from("192.0.2.1").await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "retry-after {retry_after}");
    assert_eq!(error_body(limited).await["error"], "rate limit exceeded");
    // Another client has its own bucket.
    assert_eq!(from("192.0.2.2").await.unwrap().status(), StatusCode::OK);
    host.stop().await;
}

#[tokio::test]
async fn route_rate_is_shared_by_all_clients() {
    let host = TestHost::start_with(
        &[
            plugin_with("limited", ECHO, "[ingress]\nrate = \"2/h\"\n"),
            plugin("free", ECHO),
        ],
        |config| config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()],
    )
    .await;
    for client in ["192.0.2.1", "192.0.2.2"] {
        let response = host
            .client
            .post(host.url("/hooks/limited"))
            .header("x-forwarded-for", client)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = host.post("/hooks/limited", "x").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        host.post("/hooks/free", "x").await.status(),
        StatusCode::OK,
        "other routes unaffected"
    );
    host.stop().await;
}

#[tokio::test]
async fn body_limit_is_per_route() {
    let host = TestHost::start(&[
        plugin_with("small", ECHO, "[limits]\nbody = \"1KiB\"\n"),
        plugin("big", ECHO),
    ])
    .await;
    assert_eq!(
        host.post("/hooks/small", vec![0u8; 1024]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        host.post("/hooks/small", vec![0u8; 1025]).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        host.post("/hooks/big", vec![0u8; 4096]).await.status(),
        StatusCode::OK
    );
    host.stop().await;
}

#[tokio::test]
async fn a_slow_body_is_answered_408() {
    let host = TestHost::start_with(&[plugin("echo", ECHO)], |config| {
        config.body_timeout = Duration::from_millis(500);
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    stream
        .write_all(b"POST /hooks/echo HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\nonly ten b")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("host answered and closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    host.stop().await;
}

#[tokio::test]
async fn a_slow_header_is_disconnected() {
    let host = TestHost::start_with(&[plugin("echo", ECHO)], |config| {
        config.header_timeout = Duration::from_millis(500);
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    stream
        .write_all(b"POST /hooks/echo HTTP/1.1\r\nhost: t\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(
        closed.is_ok(),
        "connection still open after the header timeout"
    );
    // Other clients are unaffected.
    assert_eq!(host.post("/hooks/echo", "x").await.status(), StatusCode::OK);
    host.stop().await;
}

pub(crate) mod tls {
    use std::sync::Arc;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use rustls_pki_types::{CertificateDer, ServerName};

    use super::*;

    pub(crate) struct Certificate {
        _dir: tempfile::TempDir,
        pub(crate) files: hookhost::config::TlsFiles,
        pub(crate) der: CertificateDer<'static>,
    }

    pub(crate) fn certificate() -> Certificate {
        let generated =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = hookhost::config::TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&files.cert, generated.cert.pem()).unwrap();
        std::fs::write(&files.key, generated.signing_key.serialize_pem()).unwrap();
        Certificate {
            der: generated.cert.der().clone(),
            files,
            _dir: dir,
        }
    }

    pub(crate) async fn connect(
        addr: std::net::SocketAddr,
        root: &CertificateDer<'static>,
        alpn: &[u8],
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    }

    fn request(addr: std::net::SocketAddr, body: &'static str) -> http::Request<Full<Bytes>> {
        http::Request::post(format!("https://localhost:{}/hooks/echo", addr.port()))
            .header("host", format!("localhost:{}", addr.port()))
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    }

    #[tokio::test]
    async fn https_serves_http1_and_http2() {
        let cert = certificate();
        let files = cert.files.clone();
        let host =
            TestHost::start_with(&[plugin("echo", ECHO)], |config| config.tls = Some(files)).await;

        let stream = connect(host.addr, &cert.der, b"http/1.1").await;
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let response = sender
            .send_request(request(host.addr, "over h1"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "over h1"
        );

        let stream = connect(host.addr, &cert.der, b"h2").await;
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let response = sender
            .send_request(request(host.addr, "over h2"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "over h2"
        );
        host.stop().await;
    }

    #[tokio::test]
    async fn plain_http_to_the_tls_listener_gets_nothing() {
        let cert = certificate();
        let files = cert.files.clone();
        let host =
            TestHost::start_with(&[plugin("echo", ECHO)], |config| config.tls = Some(files)).await;
        let result = host
            .client
            .post(host.url("/hooks/echo"))
            .body("x")
            .send()
            .await;
        assert!(result.is_err(), "plaintext must not be served: {result:?}");
        host.stop().await;
    }

    #[tokio::test]
    async fn unusable_tls_files_fail_start_up_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        let mut config = hookhost::config::HostConfig::new(dir.path(), dir.path().join("data"));
        config.tls = Some(hookhost::config::TlsFiles {
            cert: cert.clone(),
            key: dir.path().join("missing-key.pem"),
        });
        config.max_concurrency = 4;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = hookhost::run(listener, config, std::future::pending())
            .await
            .unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("cert.pem"), "{message}");
    }
}

/// Writes the head of a POST with `content-length: declared` (or chunked,
/// when `None`) and the first `sent` bytes of its body, then stalls.
async fn stalled_post(
    host: &TestHost,
    declared: Option<usize>,
    sent: usize,
) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    let mut request = b"POST /hooks/echo HTTP/1.1\r\nhost: t\r\n".to_vec();
    match declared {
        Some(len) => {
            request.extend(format!("content-length: {len}\r\n\r\n").bytes());
            request.extend(std::iter::repeat_n(b'x', sent));
        }
        None => {
            request.extend(b"transfer-encoding: chunked\r\n\r\n");
            request.extend(format!("{sent:x}\r\n").bytes());
            request.extend(std::iter::repeat_n(b'x', sent));
            request.extend(b"\r\n");
        }
    }
    stream.write_all(&request).await.unwrap();
    stream
}

/// The status line of what the host answers on `stream`.
async fn status_line(stream: &mut tokio::net::TcpStream) -> String {
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("no answer within 5 s")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn stalled_bodies_beyond_the_body_budget_are_answered_503() {
    const BODY: usize = 4096;
    const FIT: usize = 16;
    let host = TestHost::start_with_admin(&[plugin("echo", ECHO)], |config| {
        config.max_buffered = (FIT * BODY) as u64;
        config.max_body = BODY as u64;
        config.body_timeout = Duration::from_secs(30);
    })
    .await;
    let buffered = || async {
        let scrape = crate::metrics::scrape(&host).await;
        crate::metrics::value(&scrape, "hookhost_buffered_body_bytes", &[])
    };
    // Sixteen bodies that each declared 4 KiB and sent 10 bytes take the
    // whole budget before their bodies are read.
    let mut stalled = Vec::new();
    for _ in 0..FIT {
        stalled.push(stalled_post(&host, Some(BODY), 10).await);
    }
    crate::support::eventually(
        Duration::from_secs(5),
        "the stalled bodies take the budget",
        || async { (buffered().await == Some((FIT * BODY) as f64)).then_some(()) },
    )
    .await;

    // The next is refused at once, with Retry-After, its body unread.
    let started = Instant::now();
    let mut refused = stalled_post(&host, Some(BODY), 0).await;
    let answer = status_line(&mut refused).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("too many request bodies"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // So is a body of unknown length, once its first chunk arrives.
    let mut chunked = stalled_post(&host, None, 100).await;
    let answer = status_line(&mut chunked).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // Through reqwest too (a whole, small body).
    let response = host.post("/hooks/echo", "tiny").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");

    let scrape = crate::metrics::scrape(&host).await;
    let refused_total =
        crate::metrics::value(&scrape, "hookhost_body_budget_refused_total", &[]).unwrap();
    assert!(refused_total >= 3.0, "refused {refused_total}");

    // The stalled clients go away: their shares come back, and bodies fit again.
    drop(stalled);
    crate::support::eventually(
        Duration::from_secs(5),
        "the budget is given back",
        || async { (buffered().await == Some(0.0)).then_some(()) },
    )
    .await;
    let response = host.post("/hooks/echo", "fits again").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "fits again");
    host.stop().await;
}

#[tokio::test]
async fn a_route_refusal_costs_the_client_no_per_ip_token() {
    // The route refills every second; each client may send 2 an hour.
    let host = TestHost::start(&[plugin_with(
        "echo",
        ECHO,
        "[ingress]\nrate = \"1/1s\"\nrate_per_ip = \"2/h\"\n",
    )])
    .await;
    assert_eq!(host.post("/hooks/echo", "1").await.status(), StatusCode::OK);
    // The route's bucket is empty: refused, and the client keeps its token.
    assert_eq!(
        host.post("/hooks/echo", "2").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The route has a token again, and so has the client (its second).
    let response = host.post("/hooks/echo", "3").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the route's refusal spent the client's token"
    );
    host.stop().await;
}
