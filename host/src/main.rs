//! The `hookhost` command line: parse flags, install logging, dispatch to
//! the subcommand's file under [`cli`]. No logic lives here.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};
use hookhost::settings::{self, LogFormat};
use hookhost::trace;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::cli::{Cli, Command};

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
            let resolved = match cli::serve::resolve(&args, serve_matches, cli.log_format) {
                Ok(Some(resolved)) => resolved,
                Ok(None) => return ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    return ExitCode::FAILURE;
                }
            };
            let traces = match resolved.traces() {
                Ok(traces) => traces,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    return ExitCode::FAILURE;
                }
            };
            let exporter = match traces.as_ref().map(trace::Exporter::start).transpose() {
                Ok(exporter) => exporter,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    return ExitCode::FAILURE;
                }
            };
            init_logging(resolved.log_format, exporter.as_ref());
            if let Some(config) = &traces {
                tracing::info!(endpoint = %config.endpoint, protocol = ?config.protocol, "exporting traces over OTLP");
            }
            let result = cli::serve::run(resolved);
            // After the host drained: the last deliveries' spans go out too.
            if let Some(exporter) = exporter {
                exporter.shutdown();
            }
            result
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
            init_logging(format, None);
            match command {
                Command::Serve(_) => unreachable!("handled above"),
                Command::Send(args) => cli::send::run(args),
                Command::Plugins(args) => cli::plugins::run(args),
                Command::Events(command) => cli::events::run(command),
                Command::Deploy(args) => cli::deploy::run(args),
                Command::Check(args) => cli::check::run(args),
                Command::New(args) => cli::new::run(args),
                Command::Keygen(args) => cli::keygen::run(args),
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

/// Installs the subscriber: the log (text or JSON on stderr, filtered by
/// `RUST_LOG`) and, with `exporter`, the bridge that exports the same spans
/// as OpenTelemetry traces. Each has its own filter, so `RUST_LOG=warn`
/// quiets the log without emptying the traces.
fn init_logging(format: LogFormat, exporter: Option<&trace::Exporter>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let log = match format {
        LogFormat::Pretty => {
            // Colours only for a person at a terminal (and never with
            // NO_COLOR): escape codes in files and log collectors are noise.
            let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            log.with_ansi(colour).with_filter(filter).boxed()
        }
        // The current span (`span`) and its parents (`spans`) with their
        // fields: a collector can filter on `span.plugin` or `span.id`.
        LogFormat::Json => log
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_filter(filter)
            .boxed(),
    };
    let traces = exporter.map(|exporter| {
        tracing_opentelemetry::layer()
            .with_tracer(exporter.tracer())
            // Spans carry their attributes; code locations are noise.
            .with_location(false)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    tracing_subscriber::registry().with(log).with(traces).init();
}
