//! The HTTP side: accepting connections, turning a request into a delivery,
//! and answering.
//!
//! Owns the accept loop and graceful shutdown ([`serve`]), the per-request path
//! (route lookup, method, body limit, plugin call) in [`service`], and the one
//! place where an outcome becomes an HTTP status ([`response`]). Does not own
//! plugins (the registry) or the sandbox (the runtime).
//!
//! Every connection must make progress or is closed (see [`connection`]):
//! its first request head within the header timeout of accept, and after
//! that no longer than the idle timeout without a request in flight.
//!
//! Strategy for shutdown: when the shutdown future resolves the listener is
//! dropped (no new connections), every open connection is told to finish its
//! current request and close, and we wait for them up to the grace period.
//! Deliveries run inside their connection's task, so "connections drained"
//! means "in-flight deliveries finished".
//!
//! The accept loop serves any [`Handler`]: the webhook [`App`] here, and the
//! admin API ([`crate::admin`]) on its own listener.

mod budget;
mod connection;
mod keys;
mod replay;
mod response;
mod service;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use ipnet::IpNet;
use tokio::net::TcpListener;

use connection::ClientCaps;

pub use keys::{Keys, REFETCH_AFTER};
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
    /// How long a client may take, from connecting, to send its first
    /// request head (TLS handshake included); later request heads (HTTP/1)
    /// have as long from their first byte. A client that does not is
    /// disconnected: no status can be sent for a request whose head never
    /// arrived.
    pub header_timeout: Duration,
    /// How long a connection may stay open with no request in flight after
    /// its first: HTTP/2 with no open stream (hyper gives an HTTP/1
    /// keep-alive connection `header_timeout` from its last answer to its
    /// next head, which is sooner with the defaults).
    pub idle_timeout: Duration,
    /// Serve HTTPS instead of plain HTTP.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Most connections open at once; the accept loop waits for one to close
    /// (new clients queue in the kernel's backlog) rather than run out of
    /// file descriptors or memory.
    pub max_connections: usize,
    /// Most connections one client address (an IPv6 /64) may hold open;
    /// further ones are closed at once, so one client cannot take every
    /// slot of `max_connections`.
    pub max_connections_per_client: usize,
    /// Addresses not capped per client: proxies that carry many clients.
    pub uncapped: Vec<IpNet>,
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
        idle_timeout,
        tls,
        max_connections,
        max_connections_per_client,
        uncapped,
    } = options;
    let connections = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let clients = ClientCaps::new(max_connections_per_client, uncapped);
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
    let shared = Arc::new(connection::Shared {
        app,
        builder,
        tls,
        timeouts: connection::Timeouts {
            header: header_timeout,
            idle: idle_timeout,
        },
    });
    // Every connection task holds a receiver: `true` tells it to finish
    // and close, and the sender sees all of them gone once they have.
    let (drain, _) = tokio::sync::watch::channel(false);
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
        let accepted = tokio::time::Instant::now();
        let Some(slot) = clients.admit(peer.ip()) else {
            tracing::debug!(%peer, limit = max_connections_per_client, "client holds its most connections; closed");
            continue;
        };
        // Webhook answers are small: send them without Nagle's delay.
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let drain = drain.subscribe();
        // The TLS handshake too runs in the connection's own task, so a slow
        // client never holds up the accept loop.
        tokio::spawn(async move {
            let _permits = (permit, slot);
            connection::serve(shared, stream, peer, accepted, drain).await;
        });
    }

    drop(listener);
    tracing::info!(grace = ?grace, "shutting down: finishing in-flight deliveries");
    let _ = drain.send(true);
    tokio::select! {
        () = drain.closed() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!("grace period over with deliveries still running; they are cut off");
        }
    }
}
