//! One client connection, from accept to close: the per-client connection
//! cap ([`ClientCaps`]), the TLS handshake, and the watchdog that closes a
//! connection making no progress.
//!
//! Strategy: hyper's own header timeout is HTTP/1's, and starts only once
//! the auto-detecting builder has seen enough bytes to pick HTTP/1, so a
//! client that connects and says nothing (or half an HTTP/2 preface, or a
//! TLS handshake and then silence, or HTTP/2 without a stream) would hold a
//! connection slot for ever. Instead every connection gets a watchdog ([`Activity`])
//! counting from accept:
//!
//! - until its first request head is complete (TLS handshake included) it
//!   has `header_timeout`; then it is dropped: there is no request to answer;
//! - after that, whenever no request is in flight, it has `idle_timeout`
//!   (an HTTP/2 connection that only answers pings is idle); then it is
//!   closed gracefully (HTTP/2 `GOAWAY`, so a client knows nothing was lost),
//!   and dropped if it has not closed [`CLOSE_GRACE`] later. (Between HTTP/1
//!   requests hyper's header timeout runs from the last answer as well, so
//!   there the shorter of the two applies.)
//!
//! A request in flight is never cut by the watchdog: its body has the body
//! timeout and its plugin call has the plugin's.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::Handler;

/// How long a connection closed for idleness may take to finish its
/// graceful close (an HTTP/2 `GOAWAY` and its ping) before it is dropped.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Most connections each client address may hold open at once. An IPv6
/// client is its /64 (it can pick any address in it); trusted proxies carry
/// many clients and are not capped.
pub(super) struct ClientCaps {
    max: usize,
    exempt: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One of a client's connection slots; freed when dropped.
pub(super) struct ClientSlot {
    caps: Arc<ClientCaps>,
    client: Option<IpAddr>,
}

impl ClientCaps {
    pub(super) fn new(max: usize, exempt: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            exempt,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `peer`, or `None` if that client
    /// already holds its most.
    pub(super) fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<ClientSlot> {
        let peer = canonical(peer);
        if self.exempt.iter().any(|net| net.contains(&peer)) {
            return Some(ClientSlot {
                caps: self.clone(),
                client: None,
            });
        }
        let client = client_key(peer);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(client).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            caps: self.clone(),
            client: Some(client),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let Some(client) = self.client else {
            return;
        };
        let mut open = self.caps.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                // Gone clients leave nothing behind: the map holds only
                // clients with a connection open.
                open.remove(&client);
            }
        }
    }
}

/// IPv4 clients of a dual-stack listener show up as `::ffff:a.b.c.d`.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
        v4 => v4,
    }
}

/// The client an address belongs to: itself, or its /64 for IPv6.
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::V6(octets.into())
        }
        v4 => v4,
    }
}

/// How long a connection may go without progress.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// From accept to the first complete request head (TLS included).
    pub header: Duration,
    /// With no request in flight, after the first.
    pub idle: Duration,
}

/// Why the watchdog closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// No complete request head within the header timeout of accept.
    NoRequest,
    /// No request in flight for the idle timeout.
    Idle,
}

/// What the watchdog watches: requests in flight, and since when there
/// have been none. Shared by the connection's requests (which start and end
/// through [`Activity::begin`]) and its watchdog ([`Activity::stalled`]).
struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    /// When the last request ended; `None` before the first.
    idle_since: Option<Instant>,
}

/// A request in flight; it ends (and the idle clock starts) when dropped.
struct InFlight(Arc<Activity>);

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: None,
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.lock().in_flight += 1;
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// Resolves when the connection has made no progress in time: no
    /// request by `first_deadline`, or none in flight for `idle`.
    async fn stalled(&self, first_deadline: Instant, idle: Duration) -> Stall {
        loop {
            // Registered before reading the state, so a change in between
            // still wakes us.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let deadline = {
                let state = self.lock();
                match (state.in_flight, state.idle_since) {
                    (0, None) => Some((first_deadline, Stall::NoRequest)),
                    (0, Some(since)) => Some((since + idle, Stall::Idle)),
                    _ => None,
                }
            };
            match deadline {
                None => changed.await,
                Some((at, stall)) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(at) => return stall,
                    }
                }
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut state = self.0.lock();
            state.in_flight -= 1;
            state.idle_since = Some(Instant::now());
        }
        self.0.changed.notify_waiters();
    }
}

/// Everything a connection task needs, shared by all of them.
pub(super) struct Shared<H> {
    pub app: Arc<H>,
    pub builder: auto::Builder<TokioExecutor>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub timeouts: Timeouts,
}

/// Serves one accepted connection until it closes, stalls or the host
/// drains (`drain` turns true). `accepted` is when it was accepted: the
/// header timeout counts from there.
pub(super) async fn serve<H: Handler>(
    shared: Arc<Shared<H>>,
    stream: TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    drain: watch::Receiver<bool>,
) {
    let first_deadline = accepted + shared.timeouts.header;
    match &shared.tls {
        None => drive(&shared, stream, peer, first_deadline, drain).await,
        Some(acceptor) => {
            let stream = match tokio::time::timeout_at(first_deadline, acceptor.accept(stream))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake not finished within the header timeout; closed");
                    return;
                }
            };
            drive(&shared, stream, peer, first_deadline, drain).await;
        }
    }
}

/// HTTP over `io` (plain or TLS), with the watchdog.
async fn drive<H: Handler, I>(
    shared: &Shared<H>,
    io: I,
    peer: SocketAddr,
    first_deadline: Instant,
    mut drain: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let app = shared.app.clone();
    let requests = activity.clone();
    let service = service_fn(move |request| {
        // Called once the request head is complete: from here the request
        // is in flight until its answer is ready (or it is dropped).
        let in_flight = requests.begin();
        let app = app.clone();
        async move {
            let response = app.handle(request, peer).await;
            drop(in_flight);
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let connection = shared
        .builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    tokio::pin!(connection);
    let stalled = activity.stalled(first_deadline, shared.timeouts.idle);
    tokio::pin!(stalled);
    let mut watching = true;
    let mut draining = false;
    let closing = tokio::time::sleep(Duration::MAX);
    tokio::pin!(closing);
    let mut closing_armed = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            stall = &mut stalled, if watching => {
                watching = false;
                match stall {
                    Stall::NoRequest => {
                        // Nothing was asked, so nothing is lost: drop it.
                        tracing::debug!(%peer, "no request within the header timeout of connecting; closed");
                        return;
                    }
                    Stall::Idle => {
                        tracing::debug!(%peer, "idle connection closed");
                        connection.as_mut().graceful_shutdown();
                        closing.as_mut().reset(Instant::now() + CLOSE_GRACE);
                        closing_armed = true;
                    }
                }
            }
            _ = drain.wait_for(|stop| *stop), if !draining => {
                draining = true;
                // Finish the request in flight, then close; the host's grace
                // period bounds how long that may take.
                connection.as_mut().graceful_shutdown();
            }
            () = &mut closing, if closing_armed => {
                tracing::debug!(%peer, "idle connection did not close in time; dropped");
                return;
            }
        }
    }
}
