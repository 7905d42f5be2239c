//! hookhost receives webhooks, verifies them and runs each one through a
//! sandboxed WebAssembly component plugin built against the WIT world in
//! `wit/`.
//!
//! # Layout
//!
//! - [`admin`]: the admin API (health, plugins, reload, metrics; events: look
//!   up, list, replay) on its own listener.
//! - [`console`]: `hookhost plugins` and `hookhost events`, the admin API's CLI.
//! - [`check`]: `hookhost check`, offline validation of a plugin.
//! - [`config`]: host configuration and plugin manifests, validated once at load.
//! - [`inbox`]: the durable queue for queue-mode routes: store, group commit,
//!   workers with retries, dedupe.
//! - [`ingress`]: client addresses, IP allowlists and rate limits.
//! - [`runtime`]: the wasmtime engine, linker and per-call sandbox.
//! - [`registry`]: the live set of plugins, swapped atomically.
//! - [`scaffold`]: `hookhost new`, plugin projects in Rust, Python and JavaScript.
//! - [`server`]: HTTP accept loop, request path, status codes.
//! - [`send`]: `hookhost send`, signed test deliveries.
//! - [`settings`]: `serve` settings from `hookhost.toml`, flags and `HOOKHOST_*`.
//! - [`telemetry`]: per-plugin delivery totals and the Prometheus metrics.
//! - [`verify`]: signature schemes (GitHub, Stripe, Slack, ...), pure functions.
//! - [`watch`]: hot reload: watches the plugin folder, SIGHUP.
//!
//! The binary (`src/main.rs`) only parses flags, installs logging, binds the
//! listeners and calls [`run`]; tests call [`run`] directly on `127.0.0.1:0`.

pub mod admin;
pub mod check;
pub mod config;
pub mod console;
pub mod inbox;
pub mod ingress;
pub mod registry;
pub mod runtime;
pub mod scaffold;
pub mod send;
pub mod server;
pub mod settings;
pub mod telemetry;
pub mod verify;
pub mod watch;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tracing::Instrument as _;

use crate::config::HostConfig;
use crate::inbox::Inbox;
use crate::registry::Registry;
use crate::runtime::{Runtime, RuntimeConfig};

/// The sockets a host serves: webhooks, and optionally the admin API.
pub struct Listeners {
    /// Where senders deliver webhooks.
    pub hooks: TcpListener,
    /// Where the admin API listens; `None` turns it off.
    pub admin: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(hooks: TcpListener) -> Self {
        Self { hooks, admin: None }
    }
}

/// Runs the host on `listeners` (a `TcpListener` alone serves webhooks with
/// no admin API) until `shutdown` resolves, then drains in-flight deliveries
/// and queue attempts (each bounded by `config.shutdown_grace`) and returns.
///
/// Fails only on start-up problems (unreadable plugin folder, engine set-up,
/// an inbox that cannot be opened, an admin API on a public address without
/// a token); a plugin that fails to load is logged and skipped.
pub async fn run(
    listeners: impl Into<Listeners>,
    config: HostConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Listeners {
        hooks: listener,
        admin: admin_listener,
    } = listeners.into();
    if let Some(admin) = &admin_listener {
        let addr = admin
            .local_addr()
            .context("admin listener has no local address")?;
        admin::check_bind(addr, config.admin_token.as_ref())?;
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data folder {}", config.data_dir.display()))?;
    let inbox = Arc::new(Inbox::open(&config.data_dir, config.inbox.clone())?);
    let outbound = telemetry::OutboundCounter::default();
    let runtime = Arc::new(Runtime::new(&RuntimeConfig {
        max_concurrency: config.max_concurrency,
        spare_instances: config.spare_instances,
        cache_dir: config.cache_dir.clone(),
        outbound: outbound.clone(),
        kv: Some(inbox.clone()),
    })?);
    let registry = Arc::new(Registry::new());
    // Watch before the first load, so that nothing written during it is missed.
    let watcher = watch::Watcher::new(&config.plugins_dir, config.watch)?;
    let report = registry.load_dir(&runtime, &config.plugins_dir).await?;
    if report.loaded.is_empty() {
        tracing::warn!(
            folder = %config.plugins_dir.display(),
            "no plugin loaded: every route answers 404 (put NAME.wasm files in the folder)"
        );
    }

    let metrics = Arc::new(telemetry::Metrics::new(registry.clone(), outbound));
    let reloader = watcher.spawn(registry.clone(), runtime.clone(), config.reload_debounce);
    // After the first load, so queued events find their plugins.
    let workers = inbox::Workers::start(
        inbox.clone(),
        registry.clone(),
        runtime.clone(),
        metrics.clone(),
        config.shutdown_grace,
    );

    let tls = config.tls.as_ref().map(server::tls::acceptor).transpose()?;
    let addr = listener
        .local_addr()
        .context("listener has no local address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(admin) = &admin_listener {
        // Before the listening line, which tests and scripts wait for.
        let admin = admin
            .local_addr()
            .context("admin listener has no local address")?;
        tracing::info!("admin API at http://{admin}");
    }
    tracing::info!("listening on {scheme}://{addr}");
    let app = Arc::new(server::App::new(
        registry.clone(),
        runtime.clone(),
        inbox.clone(),
        metrics.clone(),
        server::Limits {
            max_body: config.max_body,
            body_timeout: config.body_timeout,
            trusted_proxies: config.trusted_proxies.clone(),
        },
    ));
    let options = server::ServeOptions {
        grace: config.shutdown_grace,
        header_timeout: config.header_timeout,
        tls,
        max_connections: config.max_connections,
    };

    // One shutdown signal, fanned out to the webhook server, the admin API
    // and the workers, which all drain at the same time.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signal = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let admin = async {
        let Some(admin_listener) = admin_listener else {
            return;
        };
        let parts = admin::Parts {
            inbox: inbox.clone(),
            registry: registry.clone(),
            runtime: runtime.clone(),
            plugins_dir: config.plugins_dir.clone(),
            metrics: metrics.clone(),
        };
        let admin = Arc::new(admin::Admin::new(parts, config.admin_token.clone()));
        let options = server::ServeOptions {
            grace: config.shutdown_grace,
            header_timeout: config.header_timeout,
            tls: None,
            // Operators and scripts, not the public: a few suffice.
            max_connections: 64,
        };
        server::serve(admin_listener, admin, options, signal(stopped.clone()))
            .instrument(tracing::info_span!("admin"))
            .await;
    };
    tokio::join!(
        async {
            shutdown.await;
            let _ = stop.send(true);
        },
        server::serve(listener, app, options, signal(stopped.clone())),
        admin,
        async {
            signal(stopped.clone()).await;
            workers.stop().await;
        },
    );
    reloader.stop().await;
    inbox.close().await;
    Ok(())
}
