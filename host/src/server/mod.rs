//! The HTTP side: accepting connections, turning a request into a delivery,
//! and answering.
//!
//! Owns the accept loop and graceful shutdown ([`serve`]), the per-request path
//! (route lookup, method, body limit, plugin call) in [`service`], and the one
//! place where an outcome becomes an HTTP status ([`response`]). Does not own
//! plugins (the registry) or the sandbox (the runtime).
//!
//! Strategy for shutdown: when the shutdown future resolves the listener is
//! dropped (no new connections), every open connection is told to finish its
//! current request and close, and we wait for them up to the grace period.
//! Deliveries run inside their connection's task, so "connections drained"
//! means "in-flight deliveries finished".
//!
//! The accept loop serves any [`Handler`]: the webhook [`App`] here, and the
//! admin API ([`crate::admin`]) on its own listener.

mod response;
mod service;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

#[doc(hidden)]
pub(crate) use response::{DELIVERY_HEADER, RESERVED_HEADERS, plugin_response};
pub use service::{App, Limits};

/// Answers requests; every outcome is a response.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request from `peer`.
    fn handle(
        &self,
        request: http::Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = http::Response<Full<Bytes>>> + Send;
}

impl Handler for App {
    fn handle(
        &self,
        request: http::Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = http::Response<Full<Bytes>>> + Send {
        App::handle(self, request, peer)
    }
}

/// Connection-level settings.
pub struct ServeOptions {
    /// How long open connections may take to drain at shutdown.
    pub grace: Duration,
    /// How long a client may take to send a request head (HTTP/1) or finish
    /// the TLS handshake. A client that does not is disconnected: no status
    /// can be sent for a request whose head never arrived.
    pub header_timeout: Duration,
    /// Serve HTTPS instead of plain HTTP.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Most connections open at once; the accept loop waits for one to close
    /// (new clients queue in the kernel's backlog) rather than run out of
    /// file descriptors or memory.
    pub max_connections: usize,
}

/// Concurrent HTTP/2 streams per connection. Each may buffer a whole body
/// before verification, so this bounds what one connection can pin in memory.
const H2_MAX_STREAMS: u32 = 32;

/// Serves `app` on `listener` until `shutdown` resolves, then drains open
/// connections for at most `options.grace`.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    app: Arc<H>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let ServeOptions {
        grace,
        header_timeout,
        tls,
        max_connections,
    } = options;
    let connections = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        // Pings find dead peers, so their streams (and buffered bodies) go.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => {
                permit.expect("the connection semaphore is never closed")
            }
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Usually EMFILE/ENFILE: back off instead of spinning, the
                    // listener itself is still fine.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Webhook answers are small: send them without Nagle's delay.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(app.handle(request, peer).await) }
        });
        match &tls {
            None => {
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(err) = connection.await {
                        tracing::debug!(%peer, error = %err, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                // The handshake runs in the connection's own task so a slow
                // client never holds up the accept loop.
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _permit = permit;
                    let stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(err)) => {
                                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(err) = watcher.watch(connection).await {
                        tracing::debug!(%peer, error = %err, "connection ended with an error");
                    }
                });
            }
        }
    }

    drop(listener);
    tracing::info!(grace = ?grace, "shutting down: finishing in-flight deliveries");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!("grace period over with deliveries still running; they are cut off");
        }
    }
}
