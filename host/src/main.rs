//! The `hookhost` command line: parse flags, install logging, bind, call the
//! library. No logic lives here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use hookhost::config::{self, HostConfig};

/// Receive webhooks, verify them and run each one through a sandboxed
/// WebAssembly plugin.
#[derive(Parser)]
#[command(name = "hookhost", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Log lines as text for people (`pretty`) or one JSON object per line
    /// for log collectors (`json`: every line about a delivery carries its
    /// span's `route`, `plugin` and `id`). `RUST_LOG` filters either
    /// (default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty, value_name = "FORMAT")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
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
    /// Create a plugin project (Rust, Python or JavaScript) ready to build
    /// with `make` and try with `hookhost send`.
    New(NewArgs),
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

    /// Sign as of this Unix time instead of now (to test stale timestamps).
    #[arg(long, value_name = "SECONDS", requires = "scheme")]
    timestamp: Option<i64>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on. Use port 0 to pick a free port (the chosen
    /// address is logged as `listening on http://ADDR`).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,

    /// Folder of plugins: each `NAME.wasm` is served at `/hooks/NAME` unless
    /// its optional `NAME.toml` manifest says otherwise.
    #[arg(long, default_value = "./plugins", value_name = "DIR")]
    plugins: PathBuf,

    /// Folder for host state: the inbox (`inbox.db`, queued events) and the
    /// compile cache. One host per folder.
    #[arg(long, default_value = "./data", value_name = "DIR")]
    data: PathBuf,

    /// Largest request body accepted; larger bodies are answered 413.
    /// Accepts sizes like `1MiB`, `512KiB` or a number of bytes.
    #[arg(long, default_value = "1MiB", value_name = "SIZE", value_parser = parse_size)]
    max_body: u64,

    /// Most plugin calls running at once; more wait for a free slot (up to the
    /// plugin's timeout, then 503). Also sizes the pre-reserved instance pool.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_concurrency: u32,

    /// On SIGINT/SIGTERM, how long to wait for in-flight deliveries to finish
    /// before exiting anyway (e.g. `30s`).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    shutdown_grace: Duration,

    /// Where compiled plugins are cached, keyed by content and engine
    /// settings, so restarts do not recompile [default: DATA/cache].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Do not cache compiled plugins (every start recompiles).
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,

    /// A proxy or load balancer whose `X-Forwarded-For` header is believed
    /// (CIDR or address; repeatable). From anyone else the header is ignored
    /// and the TCP peer is the client.
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = hookhost::ingress::parse_net)]
    trusted_proxies: Vec<ipnet::IpNet>,

    /// How long a client may take to send a request's headers (or finish the
    /// TLS handshake) before it is disconnected.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    header_timeout: Duration,

    /// How long a client may take to send the whole body; then 408.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    body_timeout: Duration,

    /// Serve HTTPS (HTTP/1.1 and HTTP/2) with this PEM certificate chain.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key for `--tls-cert`.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Most client connections open at once; further clients wait in the
    /// kernel's accept queue until one closes.
    #[arg(long, default_value_t = hookhost::config::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    max_connections: usize,

    /// Find changes in the plugin folder by polling it at this interval
    /// instead of OS notifications, for file systems that send none (NFS,
    /// some FUSE and container mounts). `--poll` alone polls every second.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, require_equals = true,
          default_missing_value = "1s", value_parser = parse_duration)]
    poll: Option<Duration>,

    /// After a change in the plugin folder, wait until it has been quiet this
    /// long before reloading, so one copy or editor save is one reload.
    #[arg(long, default_value = "100ms", value_name = "DURATION", value_parser = parse_duration)]
    reload_debounce: Duration,

    /// Serve the admin API (health, plugins and reload; look up, list and
    /// replay queued events) on this address, e.g. `127.0.0.1:9090`. Off by
    /// default. An address other than loopback needs `--admin-token`.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,

    /// Require `Authorization: Bearer <token>` on the admin API, with the
    /// token read from `env:VAR` or `file:PATH`.
    #[arg(long, value_name = "env:VAR|file:PATH", requires = "admin")]
    admin_token: Option<String>,

    /// How long a sender's delivery id is remembered: a second delivery with
    /// the same id on the same route within this window is answered
    /// `200 {"duplicate": true}` and not handled again.
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = parse_duration)]
    dedupe_window: Duration,

    /// How long done events stay in the inbox (for the admin API) before they
    /// are deleted. Dead events stay until replayed.
    #[arg(long, default_value = "7d", value_name = "DURATION", value_parser = parse_duration)]
    retention: Duration,
}

fn parse_size(text: &str) -> Result<u64, String> {
    let size = config::parse_size(text)?;
    // Bodies are buffered whole before verification: keep one request's
    // memory bounded.
    if size > config::MAX_ROUTE_BODY {
        return Err(format!(
            "{text} is more than the 64MiB a request may buffer"
        ));
    }
    Ok(size)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    config::parse_duration(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Send(args) => send(args),
        Command::Plugins(args) => {
            console(
                &args,
                |target, json| async move { target.plugins(json).await },
            )
        }
        Command::Events(command) => events(command),
        Command::New(args) => new(args),
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

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = HostConfig::new(args.plugins, args.data);
    config.max_body = args.max_body;
    config.max_concurrency = args.max_concurrency;
    config.shutdown_grace = args.shutdown_grace;
    if let Some(dir) = args.cache_dir {
        config.cache_dir = Some(dir);
    }
    if args.no_cache {
        config.cache_dir = None;
    }
    config.trusted_proxies = args.trusted_proxies;
    config.header_timeout = args.header_timeout;
    config.max_connections = args.max_connections;
    config.body_timeout = args.body_timeout;
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(hookhost::config::TlsFiles { cert, key });
    }
    if let Some(interval) = args.poll {
        config.watch = hookhost::watch::WatchMode::Poll(interval);
    }
    config.reload_debounce = args.reload_debounce;
    config.inbox.dedupe_window = args.dedupe_window;
    config.inbox.retention = args.retention;
    // Resolved here rather than by clap, whose error would repeat the value
    // (a token written inline) in the message.
    config.admin_token = args
        .admin_token
        .as_deref()
        .map(hookhost::admin::Token::resolve)
        .transpose()
        .map_err(|why| anyhow::anyhow!("--admin-token: {why}"))?;
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
                secret: Some(hookhost::verify::SecretRef::new(secret)),
                header: args.signature_header,
                prefix: args.prefix,
                algorithm: args.algorithm,
                encoding: args.encoding,
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
        .map(hookhost::admin::Token::resolve)
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

/// Registers the SIGINT and SIGTERM handlers now, before plugins load (so a
/// signal during a long start-up is not fatal: the host finishes loading,
/// then shuts down cleanly), and returns a future that resolves on the first.
/// Needs the tokio runtime.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
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
