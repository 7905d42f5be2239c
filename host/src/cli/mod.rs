//! The `hookhost` subcommands, one file each: its clap arguments (whose
//! field docs are its `--help`) and its `run`, which calls the library.
//!
//! Owns the top-level parser ([`Cli`], [`Command`]) and what more than one
//! subcommand shares: [`AdminArgs`] and [`console`] for the admin API's
//! clients. Logging is not here: `main` installs it before dispatching.

pub mod check;
pub mod deploy;
pub mod events;
pub mod keygen;
pub mod new;
pub mod plugins;
pub mod send;
pub mod serve;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use hookhost::settings::LogFormat;

/// Receive webhooks, verify them and run each one through a sandboxed
/// WebAssembly plugin.
#[derive(Parser)]
#[command(name = "hookhost", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log lines as text for people (`pretty`, the default) or one JSON
    /// object per line for log collectors (`json`: every line about a
    /// delivery carries its span's `route`, `plugin` and `id`). `RUST_LOG`
    /// filters either (default `info`). Also `HOOKHOST_LOG_FORMAT`, and
    /// `log_format` in `hookhost.toml`.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the plugins in a folder over HTTP.
    Serve(serve::ServeArgs),
    /// Send a webhook signed the way a real sender would, and print the answer.
    ///
    /// Exits 0 when the answer is 2xx, 1 otherwise.
    Send(send::SendArgs),
    /// List the plugins of a running host: route, mode, scheme, deliveries
    /// by outcome, and why a plugin failed to load (admin API `GET /plugins`).
    Plugins(AdminArgs),
    /// List, show and replay a running host's queued events (admin API).
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Deploy a plugin through a running host's admin API (validated there
    /// first; a new version each time), list its versions, roll it back or
    /// undeploy it.
    ///
    /// Exits 0 when the host took it, 1 with the host's reason otherwise.
    Deploy(deploy::DeployArgs),
    /// Validate a plugin offline, as the host would load it: the manifest,
    /// the component against the hookhost world, and a first instantiation
    /// within the manifest's limits.
    ///
    /// Exits 0 when the plugin would load, 1 with the reason otherwise.
    Check(check::CheckArgs),
    /// Create a plugin project (Rust, Python or JavaScript) ready to build
    /// with `make` and try with `hookhost send`.
    New(new::NewArgs),
    /// Write a test key pair for a key-pair scheme (`discord`,
    /// `standard-webhooks`, `sendgrid`): the private key to a file, for
    /// `hookhost send --key`, and the manifest lines with the public key to
    /// stdout.
    Keygen(keygen::KeygenArgs),
}

/// How to reach a running host's admin API.
#[derive(clap::Args)]
pub struct AdminArgs {
    /// The admin API's base URL (the host's `--admin ADDR`).
    #[arg(long = "admin", default_value = DEFAULT_ADMIN_URL, value_name = "URL")]
    admin: http::Uri,

    /// The host's `--admin-token`, read from `env:VAR` or `file:PATH`.
    #[arg(long, value_name = "env:VAR|file:PATH")]
    token: Option<String>,

    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Where `hookhost plugins` and `hookhost events` look by default: the
/// address docs/operating.md suggests for `--admin`.
const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:9090";

/// Runs one admin API request and prints its answer to stdout.
fn console<F, Fut>(args: &AdminArgs, request: F) -> anyhow::Result<()>
where
    F: FnOnce(std::sync::Arc<hookhost::console::Target>, bool) -> Fut,
    Fut: Future<Output = anyhow::Result<String>>,
{
    let token = args
        .token
        .as_deref()
        .map(hookhost::secret::Token::resolve)
        .transpose()
        .map_err(|why| anyhow::anyhow!("--token: {why}"))?;
    let target = std::sync::Arc::new(hookhost::console::Target {
        admin: args.admin.clone(),
        token,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let out = runtime.block_on(request(target, args.json))?;
    print!("{out}");
    Ok(())
}
