//! hookhost receives webhooks, verifies them and runs each one through a
//! sandboxed WebAssembly component plugin built against the WIT world in
//! `wit/`.
//!
//! # Layout
//!
//! Dependencies point down only: orchestration uses capabilities, which use
//! leaves; nothing points back up (`layers.rs` checks it).
//!
//! - Orchestration: [`server`] (HTTP in, the request stages, status codes),
//!   [`queue`] (the queue workers: claim, call, retry, dead letter, purge),
//!   [`watch`] (hot reload), [`deploy`] (plugins deployed through the
//!   admin API: versions in a store, mirrored into a folder the registry
//!   serves), [`alert`] (the `[[alert]]` rules: evaluate,
//!   sign, post), [`admin`] (the admin API: routes, auth, views),
//!   and the command line: [`settings`] (`serve` settings from flags,
//!   `HOOKHOST_*` and `hookhost.toml`), [`check`], [`console`]
//!   (`plugins`, `events`), [`scaffold`] (`new`), [`send`].
//! - One delivery: [`delivery`] builds what a plugin receives and runs it
//!   through the runtime, for the sync path and the queue alike.
//! - Capabilities: [`registry`] (the live plugin set, swapped atomically),
//!   [`config`] (host configuration and plugin manifests, validated once),
//!   [`runtime`] (the wasmtime engine, instances, host imports),
//!   [`inbox`] (the durable store behind a typed API), [`verify`] (signature
//!   schemes, pure functions).
//! - Beside them: [`fuzz`], the bodies of the fuzz targets (hidden; see
//!   `docs/fuzzing.md`), on top since they reach into every layer.
//! - Leaves: [`files`] (reading the operator's files: regular files only,
//!   never blocking, capped and timed), [`secret`] (`env:`/`file:`
//!   references and the rules for manifests), [`units`] (sizes and
//!   durations), [`ingress`] (client addresses, allowlists, rate limits),
//!   [`telemetry`] (delivery totals and Prometheus metrics, and through
//!   [`series`] the last hour per route), [`trace`] (OpenTelemetry export
//!   and the W3C `traceparent`), [`fetch`] (the host's own HTTPS GETs:
//!   signing keys, SNS confirmations).
//!
//! The binary (`src/main.rs`) only parses flags and installs logging; each
//! subcommand has a file of its own in `src/cli/` (`serve` binds the
//! listeners and calls [`run`]); tests call [`run`] directly on
//! `127.0.0.1:0`.

pub mod admin;
pub mod alert;
pub mod check;
pub mod config;
pub mod console;
pub mod delivery;
pub mod deploy;
pub mod fetch;
pub mod files;
#[doc(hidden)]
pub mod fuzz;
pub mod inbox;
pub mod ingress;
pub mod pg;
pub mod queue;
pub mod registry;
pub mod runtime;
pub mod scaffold;
pub mod secret;
pub mod send;
pub mod series;
pub mod server;
pub mod settings;
pub mod telemetry;
pub mod trace;
pub mod units;
pub mod verify;
pub mod watch;

#[cfg(test)]
mod layers;

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
    // The host's own HTTPS client, for keys the schemes name and SNS
    // confirmations (built first: a bad `--verify-ca` is a start-up error);
    // one key cache for every route.
    let fetcher = fetch::Fetcher::new(config.verify_ca.as_deref())?;
    let keys = server::Keys::new(fetcher);
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data folder {}", config.data_dir.display()))?;
    // A fleet's database, when the store is one: the inbox and the deployed
    // plugins share its pool.
    let (inbox, shared) = match &config.store {
        pg::StoreSpec::Sqlite => (Inbox::open(&config.data_dir, config.inbox.clone())?, None),
        pg::StoreSpec::Postgres(target) => {
            let pool = target.connect().await?;
            tracing::info!(store = %config.store, host = %config.inbox.host_id, "inbox in PostgreSQL, shared by every host using it");
            let inbox = Inbox::connect(pool.clone(), config.inbox.clone()).await?;
            (inbox, Some((target.clone(), pool)))
        }
    };
    let inbox = Arc::new(inbox);
    let outbound = telemetry::OutboundCounter::default();
    let runtime = Arc::new(Runtime::new(&RuntimeConfig {
        max_concurrency: config.max_concurrency,
        spare_instances: config.spare_instances,
        cache_dir: config.cache_dir.clone(),
        outbound: outbound.clone(),
        kv: Some(inbox.clone()),
    })?);
    // Watch before the first load, so that nothing written during it is missed.
    let watcher = watch::Watcher::new(&config.plugins_dir, config.watch)?;
    let registry = Arc::new(Registry::with_secret_rules(config.secret_rules()?));
    registry.load_dir(&runtime, &config.plugins_dir).await?;

    // Deployed plugins load after the folder's: at start a name in both
    // serves from the folder, and the deployed one reports the clash.
    let deploy = match &shared {
        None => deploy::Deploy::open(&config.data_dir, registry.clone(), runtime.clone())?,
        Some((_, pool)) => deploy::Deploy::new(
            Arc::new(deploy::PostgresDeployments::new(pool.clone())?),
            &config.data_dir.join("deployed"),
            registry.clone(),
            runtime.clone(),
        )?,
    };
    let deploy = Arc::new(deploy.with_host_id(config.inbox.host_id.clone()));
    // Every host hears of a deploy through any of them at once (LISTEN);
    // the --deploy-poll check catches what a lost connection missed.
    let listener_task = shared.as_ref().map(|(target, _)| {
        tokio::spawn(deploy::postgres::listen(*target.clone(), deploy.notifier()))
    });
    if let Err(err) = deploy.sync().await {
        tracing::error!(error = %format!("{err:#}"), "deployed plugins not loaded; retrying every --deploy-poll");
    }
    let syncer = deploy.spawn(config.deploy_poll);
    if registry.plugins().is_empty() {
        tracing::warn!(
            folder = %config.plugins_dir.display(),
            "no plugin loaded: every route answers 404 (put NAME.wasm files in the folder)"
        );
    }

    let metrics = Arc::new(telemetry::Metrics::new(registry.clone(), outbound));
    let deliverer = Arc::new(delivery::Deliverer::new(runtime.clone(), metrics.clone()));
    let reloader = watcher.spawn(registry.clone(), runtime.clone(), config.reload_debounce);
    // After the first load, so queued events find their plugins.
    let workers = queue::Workers::start(
        inbox.clone(),
        registry.clone(),
        deliverer.clone(),
        config.shutdown_grace,
    );
    let alerts = alert::Alerts::start(
        config.alerts.clone(),
        alert::Sources {
            inbox: inbox.clone(),
            registry: registry.clone(),
            metrics: metrics.clone(),
        },
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
        deliverer,
        inbox.clone(),
        server::Limits {
            max_body: config.max_body,
            body_timeout: config.body_timeout,
            trusted_proxies: config.trusted_proxies.clone(),
            max_buffered: config.max_buffered,
        },
        keys,
    ));
    let options = server::ServeOptions {
        grace: config.shutdown_grace,
        header_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
        tls,
        max_connections: config.max_connections,
        max_connections_per_client: config.max_connections_per_client,
        // A proxy carries many clients: capping it would cap them all.
        uncapped: config.trusted_proxies.clone(),
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
            deploy: deploy.clone(),
            max_deploy_body: config.max_deploy_body,
        };
        let admin = Arc::new(admin::Admin::new(parts, config.admin_token.clone()));
        let options = server::ServeOptions {
            grace: config.shutdown_grace,
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            tls: None,
            // Operators and scripts, not the public: a few suffice.
            max_connections: 64,
            max_connections_per_client: 64,
            uncapped: Vec::new(),
        };
        tokio::join!(
            server::serve(
                admin_listener,
                admin.clone(),
                options,
                signal(stopped.clone())
            )
            .instrument(tracing::info_span!("admin")),
            admin.sample(signal(stopped.clone())),
        );
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
    alerts.stop().await;
    reloader.stop().await;
    syncer.stop().await;
    if let Some(task) = listener_task {
        task.abort();
    }
    inbox.close().await;
    Ok(())
}
