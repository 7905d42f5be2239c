//! `hookhost serve` settings, from three layers: a config file
//! (`hookhost.toml`, given with `--config PATH` or `HOOKHOST_CONFIG`), the
//! command line, and `HOOKHOST_*` environment variables. Each setting takes
//! the value of the highest layer that sets it: environment over flags over
//! file over the built-in default.
//!
//! Owns the mapping between the three spellings of one setting (flag
//! `--max-body`, key `max_body`, variable `HOOKHOST_MAX_BODY`), checking each
//! layer on its own (so an error names the file and key, or the variable),
//! and turning the merged settings into a [`HostConfig`]. Every value goes
//! through the same clap parser whichever layer it comes from, so `1MiB`
//! means the same thing everywhere.
//!
//! Strategy: every layer is reduced to raw values per setting, the layers are
//! merged setting by setting, and the result is parsed once more as if it had
//! all been typed as flags. Rules that tie two settings together (`tls_cert`
//! needs `tls_key`) are checked after the merge, since the two may come from
//! different layers.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches as _};

use crate::config::{self, HostConfig, defaults};
use crate::units;

/// The prefix of every environment variable that sets a `serve` setting.
pub const ENV_PREFIX: &str = "HOOKHOST_";
/// The environment variable naming the config file when `--config` does not.
pub const CONFIG_ENV: &str = "HOOKHOST_CONFIG";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text for people.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Every `serve` setting. As flags they are `--NAME`; in `hookhost.toml` the
/// key is the flag's name with `_` for `-`; in the environment it is
/// `HOOKHOST_` and the key in capitals.
#[derive(Args, Debug, Clone)]
pub struct ServeSettings {
    /// Address to listen on. Use port 0 to pick a free port (the chosen
    /// address is logged as `listening on http://ADDR`).
    #[arg(long, default_value = defaults::LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Folder of plugins: each `NAME.wasm` is served at `/hooks/NAME` unless
    /// its optional `NAME.toml` manifest says otherwise.
    #[arg(long, default_value = defaults::PLUGINS, value_name = "DIR")]
    pub plugins: PathBuf,

    /// The only folder plugin manifests may read `file:` secrets and config
    /// values from (relative paths start here; `..` and symlinks cannot
    /// lead out) [default: the plugin folder]. The host's own variables
    /// (`HOOKHOST_*`) and secrets (admin token, TLS key) are never readable
    /// by a manifest.
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,

    /// Folder for host state: the inbox (`inbox.db`, queued events) and the
    /// compile cache. One host per folder.
    #[arg(long, default_value = defaults::DATA, value_name = "DIR")]
    pub data: PathBuf,

    /// Where queued events, dedupe records, plugin key-value data and
    /// deployed plugins are kept: `sqlite` (`inbox.db` in `--data`, one
    /// host) or `postgres://USER@HOST:PORT/DATABASE` (also `postgresql://`),
    /// a database every host of a fleet shares. The password goes in as a
    /// reference, `?password=env:VAR` or `file:PATH`, and is never logged;
    /// `sslmode=disable|prefer|require` (verify-ca and verify-full mean
    /// require: certificates are always verified), `sslrootcert=PEM`,
    /// `pool_size=N` (default 8) and libpq's `connect_timeout` are honoured.
    #[arg(long, default_value = "sqlite", value_name = "sqlite|postgres://…", value_parser = parse_store)]
    pub store: StoreSetting,

    /// This host's name in a fleet, recorded with every claim and attempt
    /// it makes and shown by `hookhost events` and `/plugins` [default: the
    /// machine's host name].
    #[arg(long, value_name = "ID", value_parser = parse_host_id)]
    pub host_id: Option<String>,

    /// Largest request body accepted; larger bodies are answered 413.
    /// Accepts sizes like `1MiB`, `512KiB` or a number of bytes.
    #[arg(long, default_value = defaults::MAX_BODY, value_name = "SIZE", value_parser = parse_body_size)]
    pub max_body: u64,

    /// Most plugin calls running at once; more wait for a free slot (up to the
    /// plugin's timeout, then 503). Also sizes the pre-reserved instance pool.
    #[arg(long, default_value_t = defaults::MAX_CONCURRENCY, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_concurrency: u32,

    /// Most spare instances kept ready at once, across all plugins: fresh,
    /// never-called instances made after a call, so the next delivery does
    /// not wait for one. Each holds a pool slot of its own and the memory its
    /// instance wrote at start-up (under 1 MiB for Rust, 2-3 MiB for Python
    /// or JavaScript). 0 turns them off.
    #[arg(long, default_value_t = config::DEFAULT_SPARE_INSTANCES, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub spare_instances: u32,

    /// On SIGINT/SIGTERM, how long to wait for in-flight deliveries to finish
    /// before exiting anyway (e.g. `30s`).
    #[arg(long, default_value = defaults::SHUTDOWN_GRACE, value_name = "DURATION", value_parser = units::parse_duration)]
    pub shutdown_grace: Duration,

    /// Where compiled plugins are cached, keyed by content and engine
    /// settings, so restarts do not recompile [default: DATA/cache].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not cache compiled plugins (every start recompiles). Wins over
    /// `--cache-dir`.
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false,
          default_missing_value = "true", value_name = "BOOL",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_cache: bool,

    /// A proxy or load balancer whose `X-Forwarded-For` header is believed
    /// (CIDR or address; repeatable, or comma-separated). From anyone else the
    /// header is ignored and the TCP peer is the client; likewise
    /// `X-Forwarded-Proto`/`-Host` reach verification (Twilio's URL) only
    /// from these peers.
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_delimiter = ',',
          value_parser = crate::ingress::parse_net)]
    pub trusted_proxy: Vec<ipnet::IpNet>,

    /// How long a client may take to send a request's headers before it is
    /// disconnected. For a connection's first request this counts from
    /// connecting (TLS handshake included), so a client that connects and
    /// sends nothing is closed too.
    #[arg(long, default_value = defaults::HEADER_TIMEOUT, value_name = "DURATION", value_parser = units::parse_duration)]
    pub header_timeout: Duration,

    /// How long a connection may stay open with no request in flight after
    /// its first one before it is closed: an HTTP/2 connection with no open
    /// stream (closed with a `GOAWAY`), even one that answers pings. (An
    /// HTTP/1.1 keep-alive connection must start its next request within
    /// `--header-timeout`, if that is shorter.)
    #[arg(long, default_value = defaults::IDLE_TIMEOUT, value_name = "DURATION", value_parser = units::parse_duration)]
    pub idle_timeout: Duration,

    /// How long a client may take to send the whole body; then 408.
    #[arg(long, default_value = defaults::BODY_TIMEOUT, value_name = "DURATION", value_parser = units::parse_duration)]
    pub body_timeout: Duration,

    /// Serve HTTPS (HTTP/1.1 and HTTP/2) with this PEM certificate chain
    /// (needs `--tls-key`).
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key for `--tls-cert`.
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// Also trust the PEM certificate(s) in this file, besides the webpki
    /// roots, when the host fetches signing keys (SNS certificates, JWKS)
    /// or confirms SNS subscriptions: for a private CA, or a test server.
    #[arg(long, value_name = "PEM")]
    pub verify_ca: Option<PathBuf>,

    /// Most client connections open at once; further clients wait in the
    /// kernel's accept queue until one closes.
    #[arg(long, default_value_t = config::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,

    /// Most connections one client address (an IPv6 /64) may hold open at
    /// once; further ones are closed at once. `--trusted-proxy` addresses
    /// are not capped.
    #[arg(long, default_value_t = defaults::MAX_CONNECTIONS_PER_CLIENT, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections_per_client: usize,

    /// Most request-body bytes held in memory at once, across all requests
    /// (each body is buffered whole for verification). A request that would
    /// go over is answered 503 with `Retry-After` before its body is read.
    /// Must be at least `--max-body`.
    #[arg(long, default_value = defaults::MAX_BUFFERED, value_name = "SIZE", value_parser = units::parse_size)]
    pub max_buffered: u64,

    /// Find changes in the plugin folder by polling it at this interval
    /// instead of OS notifications, for file systems that send none (NFS,
    /// some FUSE and container mounts). `--poll` alone polls every second.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, require_equals = true,
          default_missing_value = defaults::POLL, value_parser = units::parse_duration)]
    pub poll: Option<Duration>,

    /// After a change in the plugin folder, wait until it has been quiet this
    /// long before reloading, so one copy or editor save is one reload. Files
    /// renamed into place or closed after writing are complete and wait only
    /// 20 ms (or this, if shorter).
    #[arg(long, default_value = defaults::RELOAD_DEBOUNCE, value_name = "DURATION", value_parser = units::parse_duration)]
    pub reload_debounce: Duration,

    /// Serve the admin API (health, plugins and reload, metrics; look up,
    /// list and replay queued events) on this address, e.g.
    /// `127.0.0.1:9090`. Off by default. An address other than loopback needs
    /// `--admin-token`.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,

    /// Require `Authorization: Bearer <token>` on the admin API, with the
    /// token read from `env:VAR` or `file:PATH` (needs `--admin`).
    #[arg(long, value_name = "env:VAR|file:PATH")]
    pub admin_token: Option<String>,

    /// How often to check the deployment store for plugins deployed,
    /// rolled back or undeployed through another host's admin API (or
    /// behind this one's back); changes made through this host load at
    /// once.
    #[arg(long, default_value = defaults::DEPLOY_POLL, value_name = "DURATION",
          value_parser = parse_poll)]
    pub deploy_poll: Duration,

    /// Largest body `PUT /plugins/{name}` accepts (the component in base64
    /// and the manifest); larger deploys are answered 413.
    #[arg(long, default_value = defaults::MAX_DEPLOY_BODY, value_name = "SIZE", value_parser = units::parse_size)]
    pub max_deploy_body: u64,

    /// How long a sender's delivery id is remembered: a second delivery with
    /// the same id on the same route within this window is answered
    /// `200 {"duplicate": true}` and not handled again.
    #[arg(long, default_value = defaults::DEDUPE_WINDOW, value_name = "DURATION", value_parser = units::parse_duration)]
    pub dedupe_window: Duration,

    /// How long done events stay in the inbox (for the admin API) before they
    /// are deleted. Dead events stay until replayed.
    #[arg(long, default_value = defaults::RETENTION, value_name = "DURATION", value_parser = units::parse_duration)]
    pub retention: Duration,

    /// Export traces (one span per delivery, children for verification, the
    /// plugin call, the inbox write and each outbound request) over OTLP to
    /// the collector at this base URL, e.g. `http://127.0.0.1:4318`. Off by
    /// default; the standard `OTEL_EXPORTER_OTLP_ENDPOINT` sets it too.
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` picks `http/protobuf` (the default:
    /// POST to URL/v1/traces) or `grpc`; `OTEL_SERVICE_NAME` and
    /// `OTEL_TRACES_SAMPLER` (`_ARG`) are honoured.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

/// `--store` as given: the store, or why it is not one. Never refused by
/// the parser itself, whose error would repeat the value (and a password in
/// it); [`Resolved::host_config`] refuses it with a redacted message.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreSetting(Result<crate::pg::StoreSpec, String>);

impl fmt::Debug for StoreSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Ok(spec) => write!(f, "{spec}"),
            Err(_) => f.write_str("(not a store)"),
        }
    }
}

fn parse_store(text: &str) -> Result<StoreSetting, String> {
    Ok(StoreSetting(crate::pg::StoreSpec::parse(text)))
}

fn parse_host_id(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not a host id: 1 to 64 letters, digits, `-`, `_`, `.` or `:`"
        ))
    }
}

fn parse_poll(text: &str) -> Result<Duration, String> {
    let interval = units::parse_duration(text)?;
    if interval.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(interval)
}

fn parse_body_size(text: &str) -> Result<u64, String> {
    let size = units::parse_size(text)?;
    // Bodies are buffered whole before verification: keep one request's
    // memory bounded.
    if size > config::MAX_ROUTE_BODY {
        return Err(format!(
            "{text} is more than the 64MiB a request may buffer"
        ));
    }
    Ok(size)
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The config file, with its path.
    File(PathBuf),
    /// A command-line flag.
    Flag,
    /// An environment variable, with its name.
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Flag => f.write_str("command line"),
            Source::Env(name) => write!(f, "environment {name}"),
        }
    }
}

/// The merged settings, with where each came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The effective settings.
    pub settings: ServeSettings,
    /// The log format (key `log_format`, variable `HOOKHOST_LOG_FORMAT`,
    /// global flag `--log-format`).
    pub log_format: LogFormat,
    /// Where each setting that is not at its default came from, by key.
    pub sources: BTreeMap<String, Source>,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// Things worth a warning once logging is up (unknown `HOOKHOST_*`
    /// variables: probably typos).
    pub warnings: Vec<String>,
    /// The config file's `[[alert]]` rules, checked (secrets not yet read).
    pub alerts: Vec<config::AlertSpec>,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, if set.
    pub otlp_protocol: Option<String>,
}

/// One setting as the layers see it.
struct Key {
    /// clap's id (the field name): `max_body`.
    id: String,
    /// The flag without dashes: `max-body`.
    long: String,
}

impl Key {
    /// The config file's key: `max_body`.
    fn file_key(&self) -> String {
        self.long.replace('-', "_")
    }

    /// The environment variable: `HOOKHOST_MAX_BODY`.
    fn env_var(&self) -> String {
        format!("{ENV_PREFIX}{}", self.long.replace('-', "_").to_uppercase())
    }
}

/// The key and variable of the log format, which is a global flag rather
/// than a `serve` one.
const LOG_FORMAT_KEY: &str = "log_format";
/// The config file's array of `[[alert]]` tables (no flag, no variable).
const ALERT_KEY: &str = "alert";

fn command() -> clap::Command {
    ServeSettings::augment_args(clap::Command::new("serve").no_binary_name(true))
}

fn keys() -> Vec<Key> {
    command()
        .get_arguments()
        .filter_map(|arg| {
            Some(Key {
                id: arg.get_id().as_str().to_owned(),
                long: arg.get_long()?.to_owned(),
            })
        })
        .collect()
}

/// The file and variable names of every setting, for docs and errors.
pub fn file_keys() -> Vec<String> {
    let mut keys: Vec<String> = keys().iter().map(Key::file_key).collect();
    keys.push(LOG_FORMAT_KEY.to_owned());
    keys.push(format!("[[{ALERT_KEY}]]"));
    keys
}

/// Raw values per setting id, as one layer gives them.
type Layer = BTreeMap<String, Vec<OsString>>;

/// Parses `argv` (flags only) as `serve` settings.
fn parse(argv: Vec<OsString>) -> Result<ArgMatches, clap::Error> {
    command().try_get_matches_from(argv)
}

/// The first line of a clap error without its `error: ` prefix and usage.
fn clap_message(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let line = rendered.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

fn as_flags(key: &Key, values: &[OsString]) -> Vec<OsString> {
    values
        .iter()
        .map(|value| {
            let mut flag = OsString::from(format!("--{}=", key.long));
            flag.push(value);
            flag
        })
        .collect()
}

/// Checks one setting's values on their own, so an error names its origin.
fn check_one(key: &Key, values: &[OsString]) -> Result<(), String> {
    parse(as_flags(key, values))
        .map(drop)
        .map_err(|err| clap_message(&err))
}

/// What the config file says: settings, the log format, alert rules.
type FileLayer = (Layer, Option<LogFormat>, Vec<config::AlertSpec>);

/// Reads the config file into a layer (and the log format it sets).
fn file_layer(path: &Path, keys: &[Key]) -> anyhow::Result<FileLayer> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| anyhow::anyhow!("cannot read config file {}: {err}", path.display()))?;
    text_layer(path, &text, keys)
}

/// The fuzz target for `hookhost.toml` (`crate::fuzz`): `data` as the file's
/// text, read into a layer, then resolved as `serve` would. Errors are fine;
/// panics are not.
pub(crate) fn fuzz_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let keys = keys();
    let Ok((layer, _, alerts)) = text_layer(Path::new("hookhost.toml"), text, &keys) else {
        return;
    };
    let mut argv = Vec::new();
    for key in &keys {
        if let Some(values) = layer.get(&key.id) {
            argv.extend(as_flags(key, values));
        }
    }
    if let Ok(matches) = parse(argv)
        && let Ok(settings) = ServeSettings::from_arg_matches(&matches)
    {
        let resolved = Resolved {
            settings,
            log_format: LogFormat::Pretty,
            sources: BTreeMap::new(),
            config_file: None,
            warnings: Vec::new(),
            alerts,
            otlp_protocol: None,
        };
        if resolved.check_pairs().is_ok() {
            let _ = resolved.to_toml();
        }
    }
}

/// Reads the text of config file `path` into a layer.
fn text_layer(path: &Path, text: &str, keys: &[Key]) -> anyhow::Result<FileLayer> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|err| anyhow::anyhow!("{}: {}", path.display(), err.message().trim()))?;
    let mut layer = Layer::new();
    let mut log_format = None;
    let mut alerts = Vec::new();
    for (name, value) in table {
        let at = |why: String| anyhow::anyhow!("{}: key `{name}`: {why}", path.display());
        if name == ALERT_KEY {
            alerts = config::alert::parse_all(path, value)?;
            continue;
        }
        if name == LOG_FORMAT_KEY {
            let text = value
                .as_str()
                .ok_or_else(|| at("write \"pretty\" or \"json\"".into()))?;
            log_format = Some(parse_log_format(text).map_err(at)?);
            continue;
        }
        let Some(key) = keys.iter().find(|key| key.file_key() == name) else {
            return Err(at(format!(
                "unknown key; the keys are the `serve` flags with `_` for `-`: {}",
                file_keys().join(", ")
            )));
        };
        let values = match value {
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| scalar(item).map_err(&at))
                .collect::<Result<Vec<_>, _>>()?,
            other => vec![scalar(other).map_err(&at)?],
        };
        check_one(key, &values).map_err(at)?;
        layer.insert(key.id.clone(), values);
    }
    Ok((layer, log_format, alerts))
}

fn scalar(value: toml::Value) -> Result<OsString, String> {
    match value {
        toml::Value::String(text) => Ok(text.into()),
        toml::Value::Integer(number) => Ok(number.to_string().into()),
        toml::Value::Boolean(flag) => Ok(flag.to_string().into()),
        other => Err(format!(
            "expected a string, a number or a boolean, found {}",
            other.type_str()
        )),
    }
}

/// Parses `pretty` or `json` (any case).
pub fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    <LogFormat as clap::ValueEnum>::from_str(text, true)
        .map_err(|_| format!("unknown log format \"{text}\"; write \"pretty\" or \"json\""))
}

/// The settings given on the command line (not their defaults).
fn flag_layer(matches: &ArgMatches, keys: &[Key]) -> Layer {
    keys.iter()
        .filter(|key| matches.value_source(&key.id) == Some(ValueSource::CommandLine))
        .filter_map(|key| {
            let values = matches.get_raw(&key.id)?.map(OsString::from).collect();
            Some((key.id.clone(), values))
        })
        .collect()
}

/// The settings given as `HOOKHOST_*` variables. `env` is the environment
/// (a parameter so tests need not touch the process's own).
fn env_layer(
    env: &BTreeMap<String, String>,
    keys: &[Key],
) -> anyhow::Result<(Layer, Option<LogFormat>, Vec<String>)> {
    let mut layer = Layer::new();
    let mut log_format = None;
    let mut warnings = Vec::new();
    for (name, value) in env.range(ENV_PREFIX.to_owned()..) {
        if !name.starts_with(ENV_PREFIX) {
            break;
        }
        if name == CONFIG_ENV {
            continue;
        }
        if name == &format!("{ENV_PREFIX}{}", LOG_FORMAT_KEY.to_uppercase()) {
            log_format =
                Some(parse_log_format(value).map_err(|why| anyhow::anyhow!("{name}: {why}"))?);
            continue;
        }
        let Some(key) = keys.iter().find(|key| &key.env_var() == name) else {
            warnings.push(format!(
                "ignoring environment variable {name}: no `serve` setting has that name"
            ));
            continue;
        };
        // Lists come comma-separated, one flag's worth: the value parser splits them.
        let values = vec![OsString::from(value)];
        check_one(key, &values).map_err(|why| anyhow::anyhow!("{name}: {why}"))?;
        layer.insert(key.id.clone(), values);
    }
    Ok((layer, log_format, warnings))
}

/// Merges the config file (from `config_file`, else `HOOKHOST_CONFIG` in
/// `env`), the flags in `matches` (the `serve` subcommand's) and the
/// `HOOKHOST_*` variables in `env`. `log_flag` is the global
/// `--log-format`, if given.
pub fn resolve(
    matches: &ArgMatches,
    config_file: Option<&Path>,
    log_flag: Option<LogFormat>,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Resolved> {
    let keys = keys();
    let config_file = config_file.map(Path::to_owned).or_else(|| {
        env.get(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let (file, file_log, alerts) = match &config_file {
        Some(path) => file_layer(path, &keys)?,
        None => (Layer::new(), None, Vec::new()),
    };
    let flags = flag_layer(matches, &keys);
    let (vars, env_log, warnings) = env_layer(env, &keys)?;

    let mut sources = BTreeMap::new();
    let mut argv = Vec::new();
    for key in &keys {
        let pick = if let Some(values) = vars.get(&key.id) {
            Some((values, Source::Env(key.env_var())))
        } else if let Some(values) = flags.get(&key.id) {
            Some((values, Source::Flag))
        } else {
            let path = config_file.clone().unwrap_or_default();
            file.get(&key.id).map(|values| (values, Source::File(path)))
        };
        if let Some((values, source)) = pick {
            argv.extend(as_flags(key, values));
            sources.insert(key.file_key(), source);
        }
    }
    let matches = parse(argv).map_err(|err| anyhow::anyhow!("{}", clap_message(&err)))?;
    let mut settings = ServeSettings::from_arg_matches(&matches)
        .map_err(|err| anyhow::anyhow!("{}", clap_message(&err)))?;
    // The standard OpenTelemetry variable, below hookhost's own spellings.
    if settings.otlp_endpoint.is_none()
        && let Some(endpoint) = env
            .get(crate::trace::ENDPOINT_ENV)
            .filter(|v| !v.trim().is_empty())
    {
        settings.otlp_endpoint = Some(endpoint.clone());
        sources.insert(
            "otlp_endpoint".into(),
            Source::Env(crate::trace::ENDPOINT_ENV.into()),
        );
    }
    let otlp_protocol = env.get(crate::trace::PROTOCOL_ENV).cloned();

    let log_format = match (env_log, log_flag, file_log) {
        (Some(format), _, _) => {
            sources.insert(
                LOG_FORMAT_KEY.into(),
                Source::Env("HOOKHOST_LOG_FORMAT".into()),
            );
            format
        }
        (None, Some(format), _) => {
            sources.insert(LOG_FORMAT_KEY.into(), Source::Flag);
            format
        }
        (None, None, Some(format)) => {
            let path = config_file.clone().unwrap_or_default();
            sources.insert(LOG_FORMAT_KEY.into(), Source::File(path));
            format
        }
        (None, None, None) => LogFormat::Pretty,
    };

    let resolved = Resolved {
        settings,
        log_format,
        sources,
        config_file,
        warnings,
        alerts,
        otlp_protocol,
    };
    resolved.check_pairs()?;
    Ok(resolved)
}

impl Resolved {
    fn source(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Default)
    }

    /// Settings that only make sense together, possibly set in different layers.
    fn check_pairs(&self) -> anyhow::Result<()> {
        let s = &self.settings;
        let needs = |set: &str, missing: &str| {
            anyhow::anyhow!(
                "`{set}` (from {}) needs `{missing}` too (flag --{}, key {missing}, variable {ENV_PREFIX}{})",
                self.source(set),
                missing.replace('_', "-"),
                missing.to_uppercase()
            )
        };
        match (&s.tls_cert, &s.tls_key) {
            (Some(_), None) => return Err(needs("tls_cert", "tls_key")),
            (None, Some(_)) => return Err(needs("tls_key", "tls_cert")),
            _ => {}
        }
        if s.admin_token.is_some() && s.admin.is_none() {
            return Err(needs("admin_token", "admin"));
        }
        if let Err(why) = &s.store.0 {
            anyhow::bail!("`store` (from {}): {why}", self.source("store"));
        }
        self.traces()?;
        if s.max_buffered < s.max_body {
            anyhow::bail!(
                "`max_buffered` ({} bytes, from {}) is less than `max_body` ({} bytes, from {}): \
                 a body of the largest size could never be read; raise `max_buffered` or lower `max_body`",
                s.max_buffered,
                self.source("max_buffered"),
                s.max_body,
                self.source("max_body")
            );
        }
        Ok(())
    }

    /// Where traces go, if anywhere (`otlp_endpoint` and
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`), checked.
    pub fn traces(&self) -> anyhow::Result<Option<crate::trace::ExportConfig>> {
        crate::trace::ExportConfig::new(
            self.settings.otlp_endpoint.as_deref(),
            self.otlp_protocol.as_deref(),
        )
        .map_err(|err| anyhow::anyhow!("{err} (from {})", self.source("otlp_endpoint")))
    }

    /// The host configuration these settings describe. Reads the admin token
    /// (`env:`/`file:`), which is why it can fail.
    pub fn host_config(&self) -> anyhow::Result<HostConfig> {
        let s = self.settings.clone();
        let mut config = HostConfig::new(s.plugins, s.data);
        config.secrets_dir = s.secrets_dir;
        config.max_body = s.max_body;
        config.max_concurrency = s.max_concurrency;
        config.spare_instances = s.spare_instances;
        config.shutdown_grace = s.shutdown_grace;
        if let Some(dir) = s.cache_dir {
            config.cache_dir = Some(dir);
        }
        if s.no_cache {
            config.cache_dir = None;
        }
        config.trusted_proxies = s.trusted_proxy;
        config.header_timeout = s.header_timeout;
        config.idle_timeout = s.idle_timeout;
        config.body_timeout = s.body_timeout;
        config.max_connections = s.max_connections;
        config.max_connections_per_client = s.max_connections_per_client;
        config.max_buffered = s.max_buffered;
        config.verify_ca = s.verify_ca;
        if let (Some(cert), Some(key)) = (s.tls_cert, s.tls_key) {
            config.tls = Some(config::TlsFiles { cert, key });
        }
        if let Some(interval) = s.poll {
            config.watch = config::WatchMode::Poll(interval);
        }
        config.reload_debounce = s.reload_debounce;
        config.deploy_poll = s.deploy_poll;
        config.max_deploy_body = s.max_deploy_body;
        config.inbox.dedupe_window = s.dedupe_window;
        config.inbox.retention = s.retention;
        config.store = s
            .store
            .0
            .map_err(|why| anyhow::anyhow!("`store` (from {}): {why}", self.source("store")))?;
        if let Some(id) = s.host_id {
            config.inbox.host_id = id;
        }
        config.admin_token = s
            .admin_token
            .as_deref()
            .map(crate::secret::Token::resolve)
            .transpose()
            .map_err(|why| {
                anyhow::anyhow!("admin_token (from {}): {why}", self.source("admin_token"))
            })?;
        let file = self.config_file.clone().unwrap_or_default();
        config.alerts = self
            .alerts
            .iter()
            .map(|spec| spec.resolve(&file))
            .collect::<anyhow::Result<_>>()?;
        Ok(config)
    }

    /// The effective settings as a `hookhost.toml`, each line commented with
    /// where its value came from: what `serve --print-config` shows.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("# hookhost serve: effective settings\n");
        let s = &self.settings;
        let mut line = |key: &str, value: Option<String>| {
            let source = self.source(key);
            match value {
                Some(value) => out.push_str(&format!("{key} = {value}  # {source}\n")),
                None => out.push_str(&format!("# {key} is not set\n")),
            }
        };
        let text = |v: &dyn fmt::Display| Some(toml::Value::String(v.to_string()).to_string());
        let path = |p: &Path| Some(toml::Value::String(p.display().to_string()).to_string());
        let duration = |d: &Duration| text(&humantime::format_duration(*d));
        line("listen", text(&s.listen));
        line("plugins", path(&s.plugins));
        line("secrets_dir", s.secrets_dir.as_deref().and_then(path));
        line("data", path(&s.data));
        // Shown with the password masked (a reference is shown as written).
        line("store", s.store.0.as_ref().ok().and_then(|spec| text(spec)));
        line("host_id", s.host_id.as_ref().and_then(|id| text(id)));
        line("max_body", Some(s.max_body.to_string()));
        line("max_concurrency", Some(s.max_concurrency.to_string()));
        line("spare_instances", Some(s.spare_instances.to_string()));
        line("shutdown_grace", duration(&s.shutdown_grace));
        line("cache_dir", s.cache_dir.as_deref().and_then(path));
        line("no_cache", Some(s.no_cache.to_string()));
        line(
            "trusted_proxy",
            Some(
                toml::Value::Array(
                    s.trusted_proxy
                        .iter()
                        .map(|n| toml::Value::String(n.to_string()))
                        .collect(),
                )
                .to_string(),
            ),
        );
        line("header_timeout", duration(&s.header_timeout));
        line("idle_timeout", duration(&s.idle_timeout));
        line("body_timeout", duration(&s.body_timeout));
        line("tls_cert", s.tls_cert.as_deref().and_then(path));
        line("tls_key", s.tls_key.as_deref().and_then(path));
        line("verify_ca", s.verify_ca.as_deref().and_then(path));
        line("max_connections", Some(s.max_connections.to_string()));
        line(
            "max_connections_per_client",
            Some(s.max_connections_per_client.to_string()),
        );
        line("max_buffered", Some(s.max_buffered.to_string()));
        line("poll", s.poll.as_ref().and_then(duration));
        line("reload_debounce", duration(&s.reload_debounce));
        line("admin", s.admin.as_ref().and_then(|a| text(a)));
        // A reference (`env:VAR`, `file:PATH`), never the token itself.
        line("admin_token", s.admin_token.as_ref().and_then(|t| text(t)));
        line("deploy_poll", duration(&s.deploy_poll));
        line("max_deploy_body", Some(s.max_deploy_body.to_string()));
        line("dedupe_window", duration(&s.dedupe_window));
        line("retention", duration(&s.retention));
        line(
            "otlp_endpoint",
            s.otlp_endpoint.as_ref().and_then(|e| text(e)),
        );
        line(
            LOG_FORMAT_KEY,
            text(&match self.log_format {
                LogFormat::Pretty => "pretty",
                LogFormat::Json => "json",
            }),
        );
        // Tables come after every plain key, as TOML wants.
        let source = self.config_file.as_deref().map(Path::display);
        for alert in &self.alerts {
            if let Some(file) = &source {
                out.push_str(&format!("\n# {file}\n"));
            }
            let mut table = toml::Table::new();
            table.insert(
                ALERT_KEY.to_owned(),
                toml::Value::Array(vec![toml::Value::Table(alert.raw.clone())]),
            );
            out.push_str(&toml::to_string(&table).unwrap_or_default());
        }
        out
    }
}

/// The process's environment, as [`resolve`] takes it. Variables that are
/// not valid UTF-8 cannot be settings and are left out.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// Parses `serve` flags alone (no file, no environment): for tests and for
/// embedding.
pub fn matches_from<I, T>(args: I) -> Result<ArgMatches, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    command().try_get_matches_from(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn resolve_with(
        file: Option<&str>,
        flags: &[&str],
        vars: &[(&str, &str)],
    ) -> anyhow::Result<Resolved> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookhost.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let matches = matches_from(flags.iter().copied()).unwrap();
        resolve(&matches, file.map(|_| path.as_path()), None, &env(vars))
    }

    #[test]
    fn command_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn defaults_without_any_layer() {
        let resolved = resolve_with(None, &[], &[]).unwrap();
        assert_eq!(resolved.settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(resolved.settings.max_body, 1024 * 1024);
        assert!(resolved.sources.is_empty());
        assert_eq!(resolved.log_format, LogFormat::Pretty);
    }

    /// The flags (and so `hookhost.toml` and `HOOKHOST_*`, which become
    /// flags) and [`HostConfig::new`] start from the same defaults.
    #[test]
    fn flag_defaults_agree_with_host_config_new() {
        let resolved = resolve_with(None, &[], &[]).unwrap();
        let from_flags = resolved.host_config().unwrap();
        let direct = HostConfig::new(defaults::PLUGINS, defaults::DATA);
        assert_eq!(format!("{from_flags:#?}"), format!("{direct:#?}"));
        assert_eq!(resolved.settings.listen.to_string(), defaults::LISTEN);
        assert_eq!(
            resolved.settings.poll, None,
            "polling is off unless asked for"
        );
        assert_eq!(
            units::parse_duration(defaults::POLL).unwrap(),
            std::time::Duration::from_secs(1)
        );
    }

    #[test]
    fn traffic_flags_parse_and_max_buffered_must_hold_a_body() {
        let r = resolve_with(
            Some("idle_timeout = \"5s\"\nmax_buffered = \"8MiB\"\n"),
            &["--max-connections-per-client", "9"],
            &[],
        )
        .unwrap();
        let config = r.host_config().unwrap();
        assert_eq!(config.idle_timeout, Duration::from_secs(5));
        assert_eq!(config.max_buffered, 8 * 1024 * 1024);
        assert_eq!(config.max_connections_per_client, 9);
        assert!(parse(vec!["--max-connections-per-client=0".into()]).is_err());
        let err = resolve_with(None, &["--max-buffered", "1KiB"], &[]).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("max_buffered") && message.contains("max_body"),
            "{message}"
        );
    }

    #[test]
    fn env_over_flags_over_file() {
        let file = "max_body = \"10\"\nmax_concurrency = 7\nretention = \"1h\"\n";
        let r = resolve_with(Some(file), &[], &[]).unwrap();
        assert_eq!(r.settings.max_body, 10);
        assert_eq!(r.settings.max_concurrency, 7);

        let r = resolve_with(Some(file), &["--max-body", "20"], &[]).unwrap();
        assert_eq!(r.settings.max_body, 20);
        assert_eq!(r.sources["max_body"], Source::Flag);
        assert_eq!(
            r.settings.max_concurrency, 7,
            "the file still sets what flags do not"
        );

        let r = resolve_with(
            Some(file),
            &["--max-body", "20"],
            &[("HOOKHOST_MAX_BODY", "30")],
        )
        .unwrap();
        assert_eq!(r.settings.max_body, 30);
        assert_eq!(
            r.sources["max_body"],
            Source::Env("HOOKHOST_MAX_BODY".into())
        );
        assert_eq!(r.settings.retention, Duration::from_secs(3600));
    }

    #[test]
    fn lists_take_the_highest_layer_whole() {
        let file = "trusted_proxy = [\"10.0.0.0/8\", \"192.168.1.1\"]\n";
        let r = resolve_with(Some(file), &[], &[]).unwrap();
        assert_eq!(r.settings.trusted_proxy.len(), 2);
        let r = resolve_with(Some(file), &["--trusted-proxy", "172.16.0.0/12"], &[]).unwrap();
        assert_eq!(r.settings.trusted_proxy.len(), 1);
        let r = resolve_with(
            Some(file),
            &[],
            &[("HOOKHOST_TRUSTED_PROXY", "1.2.3.4,5.6.7.0/24,::1")],
        )
        .unwrap();
        assert_eq!(r.settings.trusted_proxy.len(), 3);
    }

    #[test]
    fn booleans_and_optional_values() {
        let r = resolve_with(Some("no_cache = true\npoll = \"2s\"\n"), &[], &[]).unwrap();
        assert!(r.settings.no_cache);
        assert_eq!(r.settings.poll, Some(Duration::from_secs(2)));
        assert!(r.host_config().unwrap().cache_dir.is_none());
        let r = resolve_with(
            Some("no_cache = true\n"),
            &[],
            &[("HOOKHOST_NO_CACHE", "false")],
        )
        .unwrap();
        assert!(!r.settings.no_cache);
        let r = resolve_with(None, &["--no-cache", "--poll"], &[]).unwrap();
        assert!(r.settings.no_cache);
        assert_eq!(r.settings.poll, Some(Duration::from_secs(1)));
    }

    #[test]
    fn file_errors_name_the_file_and_key() {
        let err = resolve_with(Some("max_body = \"lots\"\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("hookhost.toml: key `max_body`"), "{err}");
        assert!(err.contains("invalid size \"lots\""), "{err}");

        let err = resolve_with(Some("max-bodyy = 1\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `max-bodyy`: unknown key"), "{err}");
        assert!(
            err.contains("max_body"),
            "the message lists the keys: {err}"
        );

        let err = resolve_with(Some("listen = 8080\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `listen`"), "{err}");

        let err = resolve_with(Some("listen = [\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("hookhost.toml"), "{err}");

        let err = resolve_with(Some("retention = 1.5\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected a string, a number or a boolean"),
            "{err}"
        );
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = resolve_with(None, &[], &[("HOOKHOST_MAX_CONCURRENCY", "0")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("HOOKHOST_MAX_CONCURRENCY: "), "{err}");
        let r = resolve_with(
            None,
            &[],
            &[("HOOKHOST_MAXBODY", "1"), ("HOOKHOST_CONFIG", "")],
        )
        .unwrap();
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("HOOKHOST_MAXBODY"));
    }

    #[test]
    fn pairs_are_checked_across_layers() {
        let err = resolve_with(Some("tls_cert = \"cert.pem\"\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`tls_cert`"), "{err}");
        assert!(err.contains("tls_key"), "{err}");
        let r = resolve_with(
            Some("tls_cert = \"cert.pem\"\n"),
            &["--tls-key", "key.pem"],
            &[],
        )
        .unwrap();
        assert!(r.host_config().unwrap().tls.is_some());
        let err = resolve_with(None, &[], &[("HOOKHOST_ADMIN_TOKEN", "env:X")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs `admin`"), "{err}");
    }

    #[test]
    fn log_format_follows_the_same_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookhost.toml");
        std::fs::write(&path, "log_format = \"json\"\n").unwrap();
        let matches = matches_from(Vec::<&str>::new()).unwrap();
        let r = resolve(&matches, Some(&path), None, &env(&[])).unwrap();
        assert_eq!(r.log_format, LogFormat::Json);
        let r = resolve(&matches, Some(&path), Some(LogFormat::Pretty), &env(&[])).unwrap();
        assert_eq!(r.log_format, LogFormat::Pretty);
        let r = resolve(
            &matches,
            Some(&path),
            Some(LogFormat::Pretty),
            &env(&[("HOOKHOST_LOG_FORMAT", "json")]),
        )
        .unwrap();
        assert_eq!(r.log_format, LogFormat::Json);
    }

    #[test]
    fn config_file_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("elsewhere.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9999\"\n").unwrap();
        let matches = matches_from(Vec::<&str>::new()).unwrap();
        let r = resolve(
            &matches,
            None,
            None,
            &env(&[("HOOKHOST_CONFIG", path.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(r.settings.listen.port(), 9999);
        assert_eq!(r.config_file.as_deref(), Some(path.as_path()));
    }

    #[test]
    fn print_config_round_trips() {
        let r = resolve_with(
            Some("max_body = \"2KiB\"\ntrusted_proxy = [\"10.0.0.0/8\"]\npoll = \"3s\"\n"),
            &["--retention", "2h"],
            &[("HOOKHOST_LISTEN", "127.0.0.1:1234")],
        )
        .unwrap();
        let text = r.to_toml();
        assert!(
            text.contains("listen = \"127.0.0.1:1234\"  # environment HOOKHOST_LISTEN"),
            "{text}"
        );
        assert!(
            text.contains("retention = \"2h\"  # command line"),
            "{text}"
        );
        assert!(text.contains("# cache_dir is not set"), "{text}");
        // What it prints is itself a valid config file giving the same settings.
        let again = resolve_with(Some(&text), &[], &[]).unwrap();
        assert_eq!(again.settings.max_body, 2048);
        assert_eq!(again.settings.listen.port(), 1234);
        assert_eq!(again.settings.retention, Duration::from_secs(7200));
        assert_eq!(again.settings.trusted_proxy, r.settings.trusted_proxy);
        assert_eq!(again.settings.poll, Some(Duration::from_secs(3)));
    }

    #[test]
    fn the_store_is_printed_without_its_password() {
        let r = resolve_with(
            Some("store = \"postgres://app:hunter2@db.internal:5432/hooks\"\n"),
            &[],
            &[("HOOKHOST_HOST_ID", "edge-7")],
        )
        .unwrap();
        let text = r.to_toml();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("store = \"postgres://app:***@db.internal:5432/hooks\""),
            "{text}"
        );
        assert!(
            text.contains("host_id = \"edge-7\"  # environment HOOKHOST_HOST_ID"),
            "{text}"
        );
        assert!(!format!("{:?}", r.settings).contains("hunter2"));
        let config = r.host_config().unwrap();
        assert!(config.store.is_shared());
        assert_eq!(config.inbox.host_id, "edge-7");
        let by_reference = resolve_with(
            None,
            &["--store", "postgresql://app@db/hooks?password=env:PGPASS"],
            &[],
        )
        .unwrap();
        assert!(by_reference.to_toml().contains("password=env:PGPASS"));
        let err =
            resolve_with(None, &[], &[("HOOKHOST_STORE", "mysql://root:pw@x/db")]).unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("HOOKHOST_STORE") && err.contains("postgres://"),
            "{err}"
        );
        assert!(!err.contains(":pw@"), "{err}");
    }
}
