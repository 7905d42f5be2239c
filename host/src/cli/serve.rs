//! `hookhost serve`: serve the plugins in a folder over HTTP until SIGINT or
//! SIGTERM.
//!
//! Owns the steps around the library's [`hookhost::run`]: resolving the
//! settings (file, flags, `HOOKHOST_*`; see [`hookhost::settings`]) before
//! logging starts, binding the hook and admin listeners, and the shutdown
//! signal. Serving itself is the library's.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::ArgMatches;
use hookhost::settings::{self, LogFormat, ServeSettings};

#[derive(clap::Args)]
#[command(
    after_help = "Every setting can also be given in a config file (--config, key = the flag's \
name with `_` for `-`, e.g. `max_body = \"4MiB\"`) or as an environment variable \
(HOOKHOST_ + the key in capitals, e.g. HOOKHOST_MAX_BODY=4MiB). Environment beats flags, \
flags beat the file. `--print-config` shows the result and where each value came from."
)]
pub struct ServeArgs {
    /// Read settings from this TOML file (also `HOOKHOST_CONFIG`); flags and
    /// `HOOKHOST_*` variables override what it says.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Print the effective settings as a config file, each with where its
    /// value came from, and exit.
    #[arg(long)]
    print_config: bool,

    #[command(flatten)]
    settings: ServeSettings,
}

/// Resolves the settings from the file, the flags (`matches`, the `serve`
/// subcommand's) and the environment. Runs before logging is installed,
/// since the settings choose the log format.
///
/// `Ok(None)` when `--print-config` has printed them and there is nothing
/// to serve.
pub fn resolve(
    args: &ServeArgs,
    matches: &ArgMatches,
    log_flag: Option<LogFormat>,
) -> anyhow::Result<Option<settings::Resolved>> {
    let resolved = settings::resolve(
        matches,
        args.config.as_deref(),
        log_flag,
        &settings::process_env(),
    )?;
    if args.print_config {
        print!("{}", resolved.to_toml());
        return Ok(None);
    }
    Ok(Some(resolved))
}

/// Binds the listeners and serves until the shutdown signal.
pub fn run(resolved: settings::Resolved) -> anyhow::Result<()> {
    for warning in &resolved.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(path) = &resolved.config_file {
        tracing::info!(file = %path.display(), "read settings");
    }
    let config = resolved.host_config()?;
    let args = resolved.settings;
    if let Some(admin) = args.admin {
        // Checked before binding, so a refused address is never opened.
        hookhost::admin::check_bind(admin, config.admin_token.as_ref())?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let admin = match args.admin {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} for the admin API"))?,
            ),
            None => None,
        };
        let listeners = hookhost::Listeners {
            hooks: listener,
            admin,
        };
        hookhost::run(listeners, config, shutdown).await
    })
}

/// Registers the SIGINT, SIGTERM and SIGHUP handlers now, before plugins
/// load (so a signal during a long start-up is not fatal: the host finishes
/// loading, then shuts down cleanly or serves), and returns a future that
/// resolves on the first SIGINT or SIGTERM.
/// Needs the tokio runtime.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        // SIGHUP means "reload" once the watcher runs. Until then (a long
        // first load) its default action would kill the host: registering a
        // listener replaces that for the life of the process, and the first
        // load reads the whole folder anyway.
        drop(signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?);
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("SIGINT received"),
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C received");
        })
    }
}
