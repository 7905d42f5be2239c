//! The `hookhost` command line: parse flags, install logging, bind, call the
//! library. No logic lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use hookhost::settings::{self, LogFormat, ServeSettings};

/// Receive webhooks, verify them and run each one through a sandboxed
/// WebAssembly plugin.
#[derive(Parser)]
#[command(name = "hookhost", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Log lines as text for people (`pretty`, the default) or one JSON
    /// object per line for log collectors (`json`: every line about a
    /// delivery carries its span's `route`, `plugin` and `id`). `RUST_LOG`
    /// filters either (default `info`). Also `HOOKHOST_LOG_FORMAT`, and
    /// `log_format` in `hookhost.toml`.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the plugins in a folder over HTTP.
    Serve(ServeArgs),
    /// Send a webhook signed the way a real sender would, and print the answer.
    ///
    /// Exits 0 when the answer is 2xx, 1 otherwise.
    Send(SendArgs),
    /// List the plugins of a running host: route, mode, scheme, deliveries
    /// by outcome, and why a plugin failed to load (admin API `GET /plugins`).
    Plugins(AdminArgs),
    /// List, show and replay a running host's queued events (admin API).
    #[command(subcommand)]
    Events(EventsCommand),
    /// Validate a plugin offline, as the host would load it: the manifest,
    /// the component against the hookhost world, and a first instantiation
    /// within the manifest's limits.
    ///
    /// Exits 0 when the plugin would load, 1 with the reason otherwise.
    Check(CheckArgs),
    /// Create a plugin project (Rust, Python or JavaScript) ready to build
    /// with `make` and try with `hookhost send`.
    New(NewArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The component, `NAME.wasm`.
    #[arg(value_name = "PLUGIN.wasm")]
    wasm: PathBuf,

    /// Its manifest [default: NAME.toml beside the component, if present].
    #[arg(long, value_name = "NAME.toml")]
    manifest: Option<PathBuf>,
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  hookhost new orders --lang js
  hookhost new billing --lang python --dir plugins-src/billing")]
struct NewArgs {
    /// The plugin's name: letters, digits, `-`, `_` (it becomes `NAME.wasm`
    /// and the route `/hooks/NAME`).
    #[arg(value_name = "NAME")]
    name: String,

    /// The language: `rust`, `python` (componentize-py) or `js`
    /// (componentize-js).
    #[arg(long, value_name = "LANG", value_parser = clap::builder::PossibleValuesParser::new(hookhost::scaffold::Language::NAMES))]
    lang: String,

    /// The folder to create (it must not exist) [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// How to reach a running host's admin API.
#[derive(clap::Args)]
struct AdminArgs {
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
/// address the README suggests for `--admin`.
const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:9090";

#[derive(Subcommand)]
enum EventsCommand {
    /// Events newest first, without their requests.
    List {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only events in this state: `pending`, `done` or `dead`.
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// Only events of this route, e.g. `/hooks/github`.
        #[arg(long, value_name = "ROUTE")]
        route: Option<String>,
        /// Most events to show (1-1000) [default: 100].
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Next page: the `--before` printed under a full page.
        #[arg(long, value_name = "SEQ")]
        before: Option<i64>,
    },
    /// One event with its request (secret-bearing headers redacted), as JSON.
    Show {
        /// The delivery id.
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
        /// The route, when the id came on more than one.
        #[arg(long, value_name = "ROUTE")]
        route: Option<String>,
    },
    /// Put a done or dead event back to pending, due now, with a fresh retry
    /// budget.
    Replay {
        /// The delivery id.
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
        /// The route, when the id came on more than one.
        #[arg(long, value_name = "ROUTE")]
        route: Option<String>,
    },
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  hookhost send http://127.0.0.1:8080/hooks/github --scheme github --secret env:GITHUB_SECRET \\
      --file push.json -H 'X-GitHub-Event: push'
  hookhost send http://127.0.0.1:8080/hooks/stripe --scheme stripe --secret whsec_... --file event.json
  hookhost send http://127.0.0.1:8080/hooks/echo --data '{\"hello\":1}'")]
struct SendArgs {
    /// Where to POST, e.g. `http://127.0.0.1:8080/hooks/github`.
    #[arg(value_name = "URL")]
    url: http::Uri,

    /// Signature scheme to sign with (the route's `[verify] scheme`); omit to
    /// send unsigned.
    #[arg(long, value_name = "SCHEME", value_parser = clap::builder::PossibleValuesParser::new(hookhost::verify::scheme_names()))]
    scheme: Option<String>,

    /// Secret to sign with: `env:VAR`, `file:PATH` or the secret itself.
    #[arg(long, value_name = "SECRET", requires = "scheme")]
    secret: Option<String>,

    /// Body file (`-` for stdin).
    #[arg(long, value_name = "PATH", conflicts_with = "data")]
    file: Option<PathBuf>,

    /// Body given inline.
    #[arg(long, value_name = "TEXT")]
    data: Option<String>,

    /// Extra request header, repeatable: `-H 'X-GitHub-Event: push'`.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = hookhost::send::parse_header)]
    headers: Vec<(http::HeaderName, http::HeaderValue)>,

    /// `token`/`hmac`: header carrying the token or signature.
    #[arg(long, value_name = "NAME", requires = "scheme")]
    signature_header: Option<String>,

    /// `token`/`hmac`: text before the token or signature (e.g. `sha256=`).
    #[arg(long, value_name = "TEXT", requires = "scheme")]
    prefix: Option<String>,

    /// `hmac`: `sha1`, `sha256` or `sha512`.
    #[arg(long, value_name = "ALG", requires = "scheme")]
    algorithm: Option<String>,

    /// `hmac`: `hex` or `base64`.
    #[arg(long, value_name = "ENC", requires = "scheme")]
    encoding: Option<String>,

    /// `twilio`: the public URL the route's manifest `url` names (Twilio signs
    /// that URL, not the one the request is sent to, e.g. through a tunnel or
    /// proxy).
    #[arg(long, value_name = "URL", requires = "scheme")]
    public_url: Option<String>,

    /// Sign as of this Unix time instead of now (to test stale timestamps).
    #[arg(long, value_name = "SECONDS", requires = "scheme")]
    timestamp: Option<i64>,
}

#[derive(clap::Args)]
#[command(
    after_help = "Every setting can also be given in a config file (--config, key = the flag's \
name with `_` for `-`, e.g. `max_body = \"4MiB\"`) or as an environment variable \
(HOOKHOST_ + the key in capitals, e.g. HOOKHOST_MAX_BODY=4MiB). Environment beats flags, \
flags beat the file. `--print-config` shows the result and where each value came from."
)]
struct ServeArgs {
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

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let result = match cli.command {
        Command::Serve(args) => {
            let serve_matches = matches
                .subcommand_matches("serve")
                .expect("clap matched the serve subcommand");
            // Settings are resolved before logging starts, since they choose
            // the log format: their errors go straight to stderr.
            let resolved = match settings::resolve(
                serve_matches,
                args.config.as_deref(),
                cli.log_format,
                &settings::process_env(),
            ) {
                Ok(resolved) => resolved,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    return ExitCode::FAILURE;
                }
            };
            if args.print_config {
                print!("{}", resolved.to_toml());
                return ExitCode::SUCCESS;
            }
            init_logging(resolved.log_format);
            serve(resolved)
        }
        command => {
            // The same order as for `serve`: the variable, then the flag.
            let format = match std::env::var("HOOKHOST_LOG_FORMAT") {
                Ok(text) => match settings::parse_log_format(&text) {
                    Ok(format) => format,
                    Err(why) => {
                        eprintln!("error: HOOKHOST_LOG_FORMAT: {why}");
                        return ExitCode::FAILURE;
                    }
                },
                Err(_) => cli.log_format.unwrap_or(LogFormat::Pretty),
            };
            init_logging(format);
            match command {
                Command::Serve(_) => unreachable!("handled above"),
                Command::Send(args) => send(args),
                Command::Plugins(args) => {
                    console(
                        &args,
                        |target, json| async move { target.plugins(json).await },
                    )
                }
                Command::Events(command) => events(command),
                Command::Check(args) => check(args),
                Command::New(args) => new(args),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => {
            // Colours only for a person at a terminal (and never with
            // NO_COLOR): escape codes in files and log collectors are noise.
            let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init();
        }
        // The current span (`span`) and its parents (`spans`) with their
        // fields: a collector can filter on `span.plugin` or `span.id`.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

fn serve(resolved: settings::Resolved) -> anyhow::Result<()> {
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

fn send(args: SendArgs) -> anyhow::Result<()> {
    let body = match (&args.file, &args.data) {
        (Some(path), _) if path.as_os_str() == "-" => {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)
                .context("cannot read the body from stdin")?;
            body
        }
        (Some(path), _) => std::fs::read(path)
            .with_context(|| format!("cannot read body file {}", path.display()))?,
        (None, Some(data)) => data.clone().into_bytes(),
        (None, None) => Vec::new(),
    };
    let verify = match args.scheme {
        Some(scheme) => {
            let secret = args.secret.ok_or_else(|| {
                anyhow::anyhow!(
                    "--scheme {scheme} needs --secret (env:VAR, file:PATH or the secret)"
                )
            })?;
            Some(hookhost::verify::RawVerify {
                scheme,
                secret: Some(hookhost::secret::SecretRef::new(secret)),
                header: args.signature_header,
                prefix: args.prefix,
                algorithm: args.algorithm,
                encoding: args.encoding,
                url: args.public_url,
                ..Default::default()
            })
        }
        None => None,
    };
    let request = hookhost::send::SendRequest {
        url: args.url,
        body,
        headers: args.headers,
        verify,
        timestamp: args.timestamp,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let answer = runtime.block_on(hookhost::send::send(request))?;
    println!("{}", answer.status);
    for (name, value) in &answer.headers {
        println!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    println!();
    use std::io::Write as _;
    let mut stdout = std::io::stdout();
    stdout.write_all(&answer.body)?;
    if !answer.body.ends_with(b"\n") {
        println!();
    }
    if answer.status.is_success() {
        Ok(())
    } else {
        std::process::exit(1)
    }
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(hookhost::check::check(&args.wasm, args.manifest.as_deref()))?;
    print!("{}", report.text);
    println!("ok: {} would load", report.name);
    Ok(())
}

fn new(args: NewArgs) -> anyhow::Result<()> {
    let language: hookhost::scaffold::Language = args.lang.parse().map_err(anyhow::Error::msg)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let project = hookhost::scaffold::create(&args.name, language, &dir)?;
    println!(
        "created {} ({language} plugin `{}`, {} files)",
        project.dir.display(),
        args.name,
        project.files.len()
    );
    println!(
        "build:  cd {} && {}",
        project.dir.display(),
        hookhost::scaffold::BUILD_COMMAND
    );
    println!(
        "then see {}/README.md to serve it and try it with `hookhost send`",
        project.dir.display()
    );
    Ok(())
}

fn events(command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::List {
            admin,
            status,
            route,
            limit,
            before,
        } => {
            let filter = hookhost::console::ListFilter {
                status,
                route,
                limit,
                before,
            };
            console(&admin, |target, json| async move {
                target.list(&filter, json).await
            })
        }
        EventsCommand::Show { id, admin, route } => console(&admin, |target, _| async move {
            target.show(&id, route.as_deref()).await
        }),
        EventsCommand::Replay { id, admin, route } => console(&admin, |target, json| async move {
            target.replay(&id, route.as_deref(), json).await
        }),
    }
}

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
