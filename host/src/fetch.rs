//! HTTPS GETs the host makes on its own behalf, never for a plugin: the
//! signing keys a scheme names (an SNS `SigningCertURL`, a Pub/Sub JWKS) and
//! the SNS `SubscribeURL` a route is configured to confirm.
//!
//! Owns the client ([`Fetcher`]): HTTPS only, rustls with the webpki roots
//! (plus, for tests and private CAs, one extra trust root the operator names
//! with `--verify-ca`), HTTP/1.1, a connect timeout, a total timeout, a cap on
//! the response body, a cap on fetches in flight, and no redirects. Does not
//! own which URLs may be fetched: the scheme that names a URL has checked it
//! against its host allowlist (`cert_hosts`, `jwks_url`) before the host
//! sees it, and the server only fetches URLs a scheme gave it.
//!
//! Strategy: one connection per fetch, closed after the answer. Key fetches
//! are rare (a key is cached after its first use), so a connection pool
//! would only add state; the caps keep a flood of requests naming new key
//! URLs from pinning more than a few sockets and buffers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};

/// How long connecting (TCP and TLS) may take. Key hosts are CDNs that
/// answer in milliseconds; a sender waits for the whole fetch, so seconds
/// here are seconds of its timeout (Discord's is 3 s, most are 10 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the whole fetch (connect, request, full body) may take.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest response body read: an SNS certificate is ~2 KiB, Google's
/// JWKS ~1.5 KiB; 64 KiB leaves room for chains and many keys.
pub const MAX_BYTES: usize = 64 * 1024;
/// Most fetches in flight at once, across all routes. More wait (within
/// their total timeout): requests naming key URLs are cheap to send, and
/// each fetch holds a socket and a buffer.
pub const MAX_IN_FLIGHT: usize = 8;

/// Why a fetch produced no body. Names the host, never the path or query
/// (a `SubscribeURL` carries a token).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("only https:// URLs are fetched (got `{0}`)")]
    NotHttps(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("cannot connect to {host}: {reason}")]
    Connect { host: String, reason: String },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("{host} did not answer in time")]
    Timeout { host: String },
    #[error("{host} answered {status}")]
    Status { host: String, status: u16 },
    #[error("{host} sent more than {MAX_BYTES} bytes")]
    TooLarge { host: String },
    #[error("HTTP with {host} failed: {reason}")]
    Http { host: String, reason: String },
}

/// The host's own HTTPS client. Cheap to share behind an `Arc`.
pub struct Fetcher {
    tls: tokio_rustls::TlsConnector,
    in_flight: tokio::sync::Semaphore,
    connect_timeout: Duration,
    total_timeout: Duration,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").finish_non_exhaustive()
    }
}

/// A TLS client configuration (rustls with ring) trusting the webpki roots
/// and also the PEM certificates in `extra`, which the operator gave as
/// `setting` (named in every error): the host's own fetches, and its
/// PostgreSQL connections (`sslrootcert`).
pub fn client_config(extra: Option<&Path>, setting: &str) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra {
        let certs = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("{setting}: cannot read {}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{setting}: {} is not PEM certificates", path.display()))?;
        if certs.is_empty() {
            anyhow::bail!(
                "{setting}: {} contains no certificate (expected `-----BEGIN CERTIFICATE-----`)",
                path.display()
            );
        }
        for cert in certs {
            roots.add(cert).with_context(|| {
                format!(
                    "{setting}: {} holds a certificate rustls cannot use as a root",
                    path.display()
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol set-up failed")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Fetcher {
    /// A client trusting the webpki roots, and also the PEM certificates in
    /// `extra_ca` (the operator's `--verify-ca`) when given.
    pub fn new(extra_ca: Option<&Path>) -> anyhow::Result<Self> {
        let config = client_config(extra_ca, "--verify-ca")?;
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            connect_timeout: CONNECT_TIMEOUT,
            total_timeout: TOTAL_TIMEOUT,
        })
    }

    /// GETs `url` and returns its body: 200 only (redirects are not
    /// followed), at most [`MAX_BYTES`], within [`TOTAL_TIMEOUT`].
    pub async fn get(&self, url: &Uri) -> Result<Bytes, FetchError> {
        if url.scheme_str() != Some("https") {
            // Only the scheme and host: the rest may carry a token.
            let shown = format!(
                "{}://{}",
                url.scheme_str().unwrap_or(""),
                url.host().unwrap_or("")
            );
            return Err(FetchError::NotHttps(shown));
        }
        let host = url.host().ok_or(FetchError::NoHost)?.to_owned();
        let total = self.total_timeout;
        tokio::time::timeout(total, async {
            let _permit = self
                .in_flight
                .acquire()
                .await
                .expect("the fetch semaphore is never closed");
            self.get_now(url, &host).await
        })
        .await
        .map_err(|_| FetchError::Timeout { host: host.clone() })?
    }

    async fn get_now(&self, url: &Uri, host: &str) -> Result<Bytes, FetchError> {
        let port = url.port_u16().unwrap_or(443);
        // `[::1]` in a URL is `::1` to the resolver and to rustls.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let connect_error = |reason: String| FetchError::Connect {
            host: host.to_owned(),
            reason,
        };
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect((bare, port)),
        )
        .await
        .map_err(|_| connect_error(format!("timed out after {:?}", self.connect_timeout)))?
        .map_err(|err| connect_error(err.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(bare.to_owned()).map_err(|_| FetchError::Tls {
            host: host.to_owned(),
            reason: "not a valid TLS server name".into(),
        })?;
        let tls = tokio::time::timeout(self.connect_timeout, self.tls.connect(name, tcp))
            .await
            .map_err(|_| FetchError::Tls {
                host: host.to_owned(),
                reason: format!("handshake timed out after {:?}", self.connect_timeout),
            })?
            .map_err(|err| FetchError::Tls {
                host: host.to_owned(),
                reason: err.to_string(),
            })?;
        let http_error = |err: &dyn std::fmt::Display| FetchError::Http {
            host: host.to_owned(),
            reason: err.to_string(),
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|err| http_error(&err))?;
        // Driven by its own task, aborted (and the socket closed) when the
        // fetch ends or is dropped, e.g. at the total timeout.
        let _connection = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let authority = url.authority().map(|a| a.as_str()).unwrap_or(host);
        let path = url.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let request = http::Request::get(path)
            .header(http::header::HOST, authority)
            .header(
                http::header::USER_AGENT,
                concat!("hookhost/", env!("CARGO_PKG_VERSION")),
            )
            .header(http::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|err| http_error(&err))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| http_error(&err))?;
        if response.status() != http::StatusCode::OK {
            return Err(FetchError::Status {
                host: host.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > MAX_BYTES as u64) {
            return Err(FetchError::TooLarge {
                host: host.to_owned(),
            });
        }
        match Limited::new(response.into_body(), MAX_BYTES)
            .collect()
            .await
        {
            Ok(body) => Ok(body.to_bytes()),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(FetchError::TooLarge {
                host: host.to_owned(),
            }),
            Err(err) => Err(http_error(&err)),
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// What the loopback server answers.
    #[derive(Clone)]
    enum Answer {
        Ok(Vec<u8>),
        Status(u16),
        /// Reads the request, then says nothing.
        Silent,
    }

    /// An HTTPS server on 127.0.0.1 with a fresh certificate for
    /// `localhost`; returns its address and the certificate's PEM file.
    async fn server(answer: Answer) -> (SocketAddr, tempfile::TempDir, std::path::PathBuf) {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, generated.cert.pem()).unwrap();
        let key = rustls_pki_types::PrivateKeyDer::try_from(generated.signing_key.serialize_der())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![generated.cert.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, answer) = (acceptor.clone(), answer.clone());
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let (status, body) = match answer {
                        Answer::Ok(body) => (200, body),
                        Answer::Status(status) => (status, Vec::new()),
                        Answer::Silent => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            return;
                        }
                    };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (addr, dir, ca)
    }

    fn url(addr: SocketAddr) -> Uri {
        format!("https://localhost:{}/cert.pem", addr.port())
            .parse()
            .unwrap()
    }

    #[tokio::test]
    async fn fetches_over_https_from_a_server_the_extra_root_vouches_for() {
        let (addr, _dir, ca) = server(Answer::Ok(b"-----BEGIN CERTIFICATE-----".to_vec())).await;
        let body = Fetcher::new(Some(&ca))
            .unwrap()
            .get(&url(addr))
            .await
            .unwrap();
        assert_eq!(&body[..], b"-----BEGIN CERTIFICATE-----");
    }

    #[tokio::test]
    async fn a_server_no_root_vouches_for_is_refused() {
        let (addr, _dir, _ca) = server(Answer::Ok(b"key".to_vec())).await;
        let err = Fetcher::new(None)
            .unwrap()
            .get(&url(addr))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Tls { .. }), "{err}");
    }

    #[tokio::test]
    async fn bodies_over_the_cap_and_other_statuses_are_errors() {
        let (addr, _dir, ca) = server(Answer::Ok(vec![b'x'; MAX_BYTES + 1])).await;
        let err = Fetcher::new(Some(&ca))
            .unwrap()
            .get(&url(addr))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
        let (addr, _dir, ca) = server(Answer::Status(302)).await;
        let err = Fetcher::new(Some(&ca))
            .unwrap()
            .get(&url(addr))
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::Status { status: 302, .. }),
            "redirects are not followed: {err}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out_at_the_total_timeout() {
        let (addr, _dir, ca) = server(Answer::Silent).await;
        let mut fetcher = Fetcher::new(Some(&ca)).unwrap();
        fetcher.total_timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = fetcher.get(&url(addr)).await.unwrap_err();
        assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn only_https_is_fetched_and_the_error_hides_the_path() {
        let fetcher = Fetcher::new(None).unwrap();
        let url: Uri = "http://127.0.0.1:9/confirm?Token=secret".parse().unwrap();
        let err = fetcher.get(&url).await.unwrap_err();
        assert!(matches!(err, FetchError::NotHttps(_)), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn an_extra_root_that_is_not_pem_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let err = Fetcher::new(Some(&path)).unwrap_err();
        assert!(format!("{err:#}").contains("ca.pem"), "{err:#}");
    }
}
