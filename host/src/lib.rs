//! hookhost receives webhooks, verifies them and runs each one through a
//! sandboxed WebAssembly component plugin built against the WIT world in
//! `wit/`.
//!
//! # Layout
//!
//! - [`config`]: host configuration and plugin manifests, validated once at load.
//! - [`inbox`]: the durable queue for queue-mode routes: store, group commit,
//!   workers with retries, dedupe.
//! - [`ingress`]: client addresses, IP allowlists and rate limits.
//! - [`runtime`]: the wasmtime engine, linker and per-call sandbox.
//! - [`registry`]: the live set of plugins, swapped atomically.
//! - [`server`]: HTTP accept loop, request path, status codes.
//! - [`send`]: `hookhost send`, signed test deliveries.
//! - [`verify`]: signature schemes (GitHub, Stripe, Slack, ...), pure functions.
//! - [`watch`]: hot reload: watches the plugin folder, SIGHUP.
//!
//! The binary (`src/main.rs`) only parses flags, installs logging, binds the
//! listener and calls [`run`]; tests call [`run`] directly on `127.0.0.1:0`.

pub mod config;
pub mod inbox;
pub mod ingress;
pub mod registry;
pub mod runtime;
pub mod send;
pub mod server;
pub mod verify;
pub mod watch;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::HostConfig;
use crate::registry::Registry;
use crate::runtime::{Runtime, RuntimeConfig};

/// Runs the host on `listener` until `shutdown` resolves, then drains
/// in-flight deliveries (bounded by `config.shutdown_grace`) and returns.
///
/// Fails only on start-up problems (unreadable plugin folder, engine set-up);
/// a plugin that fails to load is logged and skipped.
pub async fn run(
    listener: TcpListener,
    config: HostConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data folder {}", config.data_dir.display()))?;
    let runtime = Arc::new(Runtime::new(&RuntimeConfig {
        max_concurrency: config.max_concurrency,
        cache_dir: config.cache_dir.clone(),
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

    let reloader = watcher.spawn(registry.clone(), runtime.clone(), config.reload_debounce);

    let tls = config.tls.as_ref().map(server::tls::acceptor).transpose()?;
    let addr = listener
        .local_addr()
        .context("listener has no local address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {scheme}://{addr}");
    let app = Arc::new(server::App::new(
        registry,
        runtime,
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
    server::serve(listener, app, options, shutdown).await;
    reloader.stop().await;
    Ok(())
}
