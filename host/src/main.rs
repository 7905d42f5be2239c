//! The `hookhost` command line: parse flags, install logging, dispatch to
//! the subcommand's file under [`cli`]. No logic lives here.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};
use hookhost::settings::{self, LogFormat};

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
            init_logging(resolved.log_format);
            cli::serve::run(resolved)
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
                Command::Send(args) => cli::send::run(args),
                Command::Plugins(args) => cli::plugins::run(args),
                Command::Events(command) => cli::events::run(command),
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
