//! Plugin manifests: `NAME.toml` beside `NAME.wasm`, parsed in two steps.
//! [`RawManifest`] is exactly the TOML (`deny_unknown_fields`, so a typo is
//! an error naming the key), and [`Manifest`] is the checked result:
//! durations and sizes parsed, secrets resolved, the route checked, and the
//! capability grants built in the runtime's own types. Every error names
//! the file, the field and, where there is one, the fix.
//!
//! Validated once, at load; nothing here runs per request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::ingress::{IngressPolicy, RawIngress};
use crate::runtime::kv::{self, KvLimits};
use crate::runtime::outbound::{self, HostPattern, HttpGrant, OutboundPolicy};
use crate::runtime::{Grants, MAX_MEMORY, PluginConfig};
use crate::secret::{SecretRef, SecretResolver, SecretRules};
use crate::units::{MIB, parse_duration, parse_size};
use crate::verify::{self, RawVerify, Scheme};

/// Default wall-clock limit for one plugin call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default linear-memory cap for one plugin instance.
pub const DEFAULT_MEMORY: u64 = 64 * MIB;
/// Default `[retry] max_attempts`: with the default base and cap, the last
/// attempt comes at most ~27 minutes (on average ~14) after the first, long
/// enough to ride out a deploy or a short outage of the plugin's downstream.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 12;
/// Default `[retry] base`: the first retry comes within this long.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
/// Default `[retry] max`: no wait between attempts is longer.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(10 * 60);
/// Default `[queue] concurrency`: queued events of one route being handled
/// at once. Enough to keep a slow downstream busy without letting one route
/// take every instance slot.
pub const DEFAULT_QUEUE_CONCURRENCY: u32 = 4;
/// Default `[queue] max_pending`: events of one route waiting or being
/// attempted before its senders get 429. At the default concurrency and a
/// plugin of a few milliseconds that is minutes of backlog, far more than a
/// burst; a route beyond it is not keeping up, and the senders' own retries
/// hold the rest instead of the host's disk. About 150 MB of 1.5 KB events.
pub const DEFAULT_MAX_PENDING: u64 = 100_000;
/// The largest `[queue] max_pending` a manifest may set.
pub const MAX_MAX_PENDING: u64 = 100_000_000;
/// The largest body a manifest may allow: bodies are buffered whole (the
/// signature covers every byte), so this bounds memory per request.
pub const MAX_ROUTE_BODY: u64 = 64 * MIB;

/// A plugin manifest exactly as written in `NAME.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    /// Path the plugin is served at; default `/hooks/NAME`.
    pub route: Option<String>,
    /// Per-call resource limits.
    #[serde(default)]
    pub limits: RawLimits,
    /// Signature verification; none means the route is unverified.
    pub verify: Option<RawVerify>,
    /// Who may send and how often.
    pub ingress: Option<RawIngress>,
    /// `"sync"` (default: the plugin's answer is the sender's) or `"queue"`
    /// (stored durably, answered 202, handled by workers with retries).
    pub mode: Option<String>,
    /// Queue mode: how failed attempts are retried.
    pub retry: Option<RawRetry>,
    /// Queue mode: how queued events are worked off.
    pub queue: Option<RawQueue>,
    /// Settings the plugin reads through the `config` import: string values,
    /// `env:VAR` and `file:PATH` resolved at load.
    pub config: Option<BTreeMap<String, String>>,
    /// Size limits of the plugin's key-value namespace.
    pub kv: Option<RawKv>,
    /// What the plugin may reach outside the host.
    pub allow: Option<RawAllow>,
    /// How instances are used: a fresh one per delivery unless the plugin
    /// opts into reuse.
    pub instance: Option<RawInstance>,
    /// `true`: the route is unverified on purpose. Needed for a reload to
    /// take `[verify]` away from a route that is serving verified.
    pub unverified: Option<bool>,
}

/// The `[instance]` table of a manifest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstance {
    /// Most deliveries one instance serves, one after another; 1 (the
    /// default) is a fresh instance per delivery.
    pub max_deliveries: Option<u32>,
}

/// The `[kv]` table of a manifest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKv {
    /// Longest key, e.g. `"512B"`.
    pub max_key: Option<String>,
    /// Largest value, e.g. `"64KiB"`.
    pub max_value: Option<String>,
    /// Most bytes of keys plus values in all, e.g. `"10MiB"`.
    pub max_total: Option<String>,
}

/// The `[allow]` table of a manifest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    /// Hosts the plugin may send HTTP requests to: `"api.example.com"` (any
    /// port), `"*.slack.com"` (subdomains), `"127.0.0.1:9000"` (that port),
    /// or a table `{ host = "…", private = true }` for a name that may
    /// resolve to a non-public address.
    /// Read by hand ([`parse_http_grant`]) so a wrong entry gets an error
    /// naming both forms, not serde's "did not match any variant".
    pub http: Option<Vec<toml::Value>>,
}

/// The `[retry]` table of a manifest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all, the first included, before an event is dead.
    pub max_attempts: Option<u32>,
    /// Backoff base, e.g. `"1s"`: attempt `n` fails → wait a random time up
    /// to `min(max, base * 2^(n-1))`.
    pub base: Option<String>,
    /// Longest wait between attempts, e.g. `"10m"`.
    pub max: Option<String>,
}

/// The `[queue]` table of a manifest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    /// Queued events of this route handled at once.
    pub concurrency: Option<u32>,
    /// Most events of this route pending (waiting or being attempted);
    /// beyond it the route answers 429 with `Retry-After`. 0 or absent:
    /// [`DEFAULT_MAX_PENDING`]. Signed, so a negative value gets our error,
    /// not serde's.
    pub max_pending: Option<i64>,
    /// What names the object an event is about (`"json:/pointer"` or
    /// `"header:Name"`): events with the same key are delivered one at a
    /// time, in acceptance order.
    pub order_key: Option<String>,
}

/// How a route answers its sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Run the plugin during the request; its response is the answer.
    #[default]
    Sync,
    /// Store the delivery durably, answer 202, run the plugin afterwards
    /// (with retries).
    Queue,
}

/// When and how often a queued event is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff base.
    pub base: Duration,
    /// Longest wait between attempts.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base: DEFAULT_RETRY_BASE,
            max: DEFAULT_RETRY_MAX,
        }
    }
}

impl RetryPolicy {
    /// The longest wait after failed attempt `attempt` (1-based):
    /// `min(max, base * 2^(attempt-1))`. The actual wait is a random time up
    /// to this ("full jitter"), so retries of many events spread out instead
    /// of arriving at the downstream together.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        // 2^(attempt-1) overflows a u32 long after any sane cap is reached.
        1u32.checked_shl(attempt.saturating_sub(1))
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.max, |d| d.min(self.max))
    }
}

/// The `[limits]` table of a manifest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Wall-clock limit for one call, e.g. `"2s"`, `"500ms"`.
    pub timeout: Option<String>,
    /// Linear-memory cap, e.g. `"32MiB"`.
    pub memory: Option<String>,
    /// Largest request body for this route, e.g. `"256KiB"` (default: the
    /// host's `--max-body`).
    pub body: Option<String>,
    /// Outbound HTTP: longest wait to connect, for the first response byte
    /// and between bytes, e.g. `"3s"`.
    pub http_timeout: Option<String>,
    /// Outbound HTTP: largest response body a plugin may read, e.g. `"256KiB"`.
    pub http_response: Option<String>,
}

/// A validated plugin manifest (defaults applied when there was no file).
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The route this plugin answers, e.g. `/hooks/echo`.
    pub route: String,
    /// Wall-clock limit for one call.
    pub timeout: Duration,
    /// Linear-memory cap for one instance, in bytes.
    pub memory: u64,
    /// The scheme every request must pass before the plugin runs, with its
    /// secrets resolved; `None` for an unverified route.
    pub verify: Option<Arc<dyn Scheme>>,
    /// Largest request body for this route; `None` means the host's limit.
    pub max_body: Option<u64>,
    /// Allowlist and rate limits (with their live buckets).
    pub ingress: Arc<IngressPolicy>,
    /// Sync or queue.
    pub mode: Mode,
    /// Queue mode: retries.
    pub retry: RetryPolicy,
    /// Queue mode: events of this route handled at once.
    pub concurrency: u32,
    /// Queue mode: most events of this route pending before it answers 429.
    pub max_pending: u64,
    /// Queue mode: `[queue] order_key`, parsed; `None`: no order.
    pub order_key: Option<crate::inbox::OrderKey>,
    /// Outbound HTTP: `[allow] http` and the `http_*` limits.
    pub outbound: Arc<OutboundPolicy>,
    /// The `[config]` values, resolved.
    pub config: Arc<PluginConfig>,
    /// Limits of the plugin's key-value namespace.
    pub kv: KvLimits,
    /// `[instance] max_deliveries`: most deliveries one instance serves; 1
    /// is a fresh instance per delivery.
    pub max_deliveries: u32,
    /// `unverified = true`: the manifest says the route is unverified on
    /// purpose, so a reload may drop verification from a running route.
    pub unverified: bool,
}

/// A manifest that could not be read or does not validate.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ManifestError {
    /// The manifest file.
    pub path: PathBuf,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Manifest {
    /// The manifest of a plugin that has no `NAME.toml`.
    pub fn default_for(name: &str) -> Self {
        Self {
            route: format!("/hooks/{name}"),
            timeout: DEFAULT_TIMEOUT,
            memory: DEFAULT_MEMORY,
            verify: None,
            max_body: None,
            ingress: Arc::default(),
            mode: Mode::Sync,
            retry: RetryPolicy::default(),
            concurrency: DEFAULT_QUEUE_CONCURRENCY,
            max_pending: DEFAULT_MAX_PENDING,
            order_key: None,
            outbound: Arc::default(),
            config: Arc::default(),
            kv: KvLimits::default(),
            max_deliveries: 1,
            unverified: false,
        }
    }

    /// What this manifest grants plugin `name`'s calls.
    pub fn grants(&self, name: &str) -> Grants {
        Grants {
            plugin: name.into(),
            outbound: self.outbound.clone(),
            config: self.config.clone(),
            kv: self.kv,
            max_deliveries: self.max_deliveries,
        }
    }

    /// Reads and validates the manifest at `path` for plugin `name`, under
    /// the rules of a host with the default `--secrets-dir` (the manifest's
    /// own folder): what `hookhost check` uses.
    pub fn load(name: &str, path: &Path) -> Result<Self, ManifestError> {
        let error = |message: String| ManifestError {
            path: path.to_owned(),
            message,
        };
        let bytes = crate::files::read(path, crate::files::MAX_MANIFEST)
            .map_err(|err| error(format!("cannot read manifest: {err}")))?;
        let text = String::from_utf8(bytes).map_err(|_| error("is not UTF-8 text".into()))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let rules = SecretRules::new(dir).map_err(error)?;
        Self::parse(name, &text, &SecretResolver::for_manifest(&rules)).map_err(error)
    }

    /// Parses and validates manifest text, resolving secret references with
    /// `secrets`; the error is a message without the file name (the caller
    /// adds it).
    pub fn parse(name: &str, text: &str, secrets: &SecretResolver<'_>) -> Result<Self, String> {
        // An empty file is almost always a manifest caught mid-write; taking
        // it as "all defaults" would serve a verified route unverified.
        if text.trim().is_empty() {
            return Err(
                "manifest is empty (half-written?); write at least one key, e.g. `route = \"/hooks/NAME\"`"
                    .into(),
            );
        }
        let raw: RawManifest = toml::from_str(text).map_err(|err| toml_error(&err, text))?;
        Self::validate(name, raw, secrets)
    }

    fn validate(
        name: &str,
        raw: RawManifest,
        secrets: &SecretResolver<'_>,
    ) -> Result<Self, String> {
        let defaults = Self::default_for(name);
        let outbound = parse_outbound(&raw.limits, raw.allow.as_ref())?;
        let route = match raw.route {
            Some(route) => check_route(&route).map_err(|why| format!("`route`: {why}"))?,
            None => defaults.route,
        };
        let timeout = match raw.limits.timeout {
            Some(text) => {
                let timeout =
                    parse_duration(&text).map_err(|why| format!("`limits.timeout`: {why}"))?;
                if timeout.is_zero() {
                    return Err("`limits.timeout`: must be more than zero".into());
                }
                timeout
            }
            None => defaults.timeout,
        };
        let memory = match raw.limits.memory {
            Some(text) => {
                let memory = parse_size(&text).map_err(|why| format!("`limits.memory`: {why}"))?;
                if memory < MIB {
                    return Err(format!(
                        "`limits.memory`: {text} is too small; a plugin needs at least 1MiB"
                    ));
                }
                if memory > MAX_MEMORY {
                    return Err(format!(
                        "`limits.memory`: {text} is more than the 4GiB a plugin can address"
                    ));
                }
                memory
            }
            None => defaults.memory,
        };
        let max_body = match &raw.limits.body {
            Some(text) => {
                let body = parse_size(text).map_err(|why| format!("`limits.body`: {why}"))?;
                if body > MAX_ROUTE_BODY {
                    return Err(format!(
                        "`limits.body`: {text} is more than the 64MiB a route may buffer"
                    ));
                }
                Some(body)
            }
            None => None,
        };
        let ingress = match &raw.ingress {
            Some(raw) => Arc::new(IngressPolicy::new(raw)?),
            None => Arc::default(),
        };
        let verify = match &raw.verify {
            Some(raw) => {
                let scheme = verify::build(raw, secrets).map_err(|err| err.to_string())?;
                if raw.secret.as_ref().is_some_and(|s| s.is_literal())
                    || raw.secrets.iter().flatten().any(|s| s.is_literal())
                {
                    tracing::warn!(
                        plugin = name,
                        "`verify.secret` is written inline in the manifest; prefer `env:VAR` or `file:PATH`"
                    );
                }
                Some(scheme)
            }
            None => None,
        };
        let mode = match raw.mode.as_deref() {
            None | Some("sync") => Mode::Sync,
            Some("queue") => Mode::Queue,
            Some(other) => {
                return Err(format!(
                    "`mode`: \"{other}\" is not a mode; write \"sync\" (the default) or \"queue\""
                ));
            }
        };
        let retry = match &raw.retry {
            Some(raw) => parse_retry(raw)?,
            None => defaults.retry,
        };
        let concurrency = match raw.queue.as_ref().and_then(|q| q.concurrency) {
            Some(n) if (1..=1000).contains(&n) => n,
            Some(n) => {
                return Err(format!(
                    "`queue.concurrency`: {n} is out of range; use 1 to 1000"
                ));
            }
            None => defaults.concurrency,
        };
        let max_pending = match raw.queue.as_ref().and_then(|q| q.max_pending) {
            None | Some(0) => defaults.max_pending,
            Some(n) if (1..=MAX_MAX_PENDING as i64).contains(&n) => n as u64,
            Some(n) => {
                return Err(format!(
                    "`queue.max_pending`: {n} is out of range; use 1 to {MAX_MAX_PENDING} \
                     (0 or leaving it out means the default, {DEFAULT_MAX_PENDING})"
                ));
            }
        };
        let order_key = match raw.queue.as_ref().and_then(|q| q.order_key.as_deref()) {
            Some(text) => Some(
                crate::inbox::OrderKey::parse(text)
                    .map_err(|why| format!("`queue.order_key`: {why}"))?,
            ),
            None => None,
        };
        let unverified = raw.unverified.unwrap_or(false);
        if unverified && verify.is_some() {
            return Err(
                "`unverified = true` and a `[verify]` table contradict each other; remove one"
                    .into(),
            );
        }
        if mode == Mode::Sync && (raw.retry.is_some() || raw.queue.is_some()) {
            tracing::warn!(
                plugin = name,
                "`[retry]` and `[queue]` only apply with `mode = \"queue\"`; this plugin is in sync mode"
            );
        }
        Ok(Self {
            route,
            timeout,
            memory,
            verify,
            max_body,
            ingress,
            mode,
            retry,
            concurrency,
            max_pending,
            order_key,
            outbound: Arc::new(outbound),
            config: Arc::new(parse_config(raw.config, secrets)?),
            kv: parse_kv(raw.kv.as_ref())?,
            max_deliveries: parse_instance(raw.instance.as_ref())?,
            unverified,
        })
    }
}

/// Most deliveries one instance may serve: a bound, so that whatever a
/// guest accumulates (a leak, a cache without limit) is dropped with its
/// instance after a while even when no call fails.
pub const MAX_DELIVERIES_PER_INSTANCE: u32 = 1_000_000;

fn parse_instance(raw: Option<&RawInstance>) -> Result<u32, String> {
    match raw.and_then(|instance| instance.max_deliveries) {
        None => Ok(1),
        Some(n) if (1..=MAX_DELIVERIES_PER_INSTANCE).contains(&n) => Ok(n),
        Some(n) => Err(format!(
            "`instance.max_deliveries`: {n} is out of range; use 1 (a fresh instance per \
             delivery, the default) to {MAX_DELIVERIES_PER_INSTANCE}"
        )),
    }
}

fn parse_outbound(limits: &RawLimits, allow: Option<&RawAllow>) -> Result<OutboundPolicy, String> {
    let mut policy = OutboundPolicy::default();
    if let Some(text) = &limits.http_timeout {
        policy.timeout =
            parse_duration(text).map_err(|why| format!("`limits.http_timeout`: {why}"))?;
        if policy.timeout.is_zero() {
            return Err("`limits.http_timeout`: must be more than zero".into());
        }
    }
    if let Some(text) = &limits.http_response {
        policy.max_response =
            parse_size(text).map_err(|why| format!("`limits.http_response`: {why}"))?;
        if policy.max_response > outbound::LIMIT_HTTP_RESPONSE {
            return Err(format!(
                "`limits.http_response`: {text} is more than the 64MiB a plugin may read in one response"
            ));
        }
    }
    for (index, entry) in allow
        .and_then(|allow| allow.http.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let grant =
            parse_http_grant(entry).map_err(|why| format!("`allow.http[{index}]`: {why}"))?;
        if !policy.allow.contains(&grant) {
            policy.allow.push(grant);
        }
    }
    Ok(policy)
}

/// One `[allow] http` entry: a host string (`"api.example.com"`), or a
/// table `{ host = "internal.example", private = true }` whose name may
/// resolve to loopback, private or other non-public addresses.
fn parse_http_grant(entry: &toml::Value) -> Result<HttpGrant, String> {
    const FORMS: &str = "write a host string (\"api.example.com\") or a table \
                         ({ host = \"internal.example\", private = true })";
    match entry {
        toml::Value::String(text) => HostPattern::parse(text).map(HttpGrant::public),
        toml::Value::Table(table) => {
            let mut host = None;
            let mut private = false;
            for (key, value) in table {
                match (key.as_str(), value) {
                    ("host", toml::Value::String(text)) => host = Some(text),
                    ("private", toml::Value::Boolean(flag)) => private = *flag,
                    ("host", _) => return Err(format!("`host` must be a string; {FORMS}")),
                    ("private", _) => {
                        return Err(format!("`private` must be true or false; {FORMS}"));
                    }
                    (other, _) => {
                        return Err(format!(
                            "unknown field `{other}` (expected `host` or `private`); {FORMS}"
                        ));
                    }
                }
            }
            let host = host.ok_or_else(|| format!("the table has no `host`; {FORMS}"))?;
            Ok(HttpGrant {
                pattern: HostPattern::parse(host)?,
                private,
            })
        }
        other => Err(format!("a {} is not a host; {FORMS}", other.type_str())),
    }
}

/// Resolves `[config]`: `env:VAR` and `file:PATH` (relative to the manifest)
/// are read now, anything else is the value itself. Errors name the key,
/// never the value.
fn parse_config(
    raw: Option<BTreeMap<String, String>>,
    secrets: &SecretResolver<'_>,
) -> Result<PluginConfig, String> {
    let mut values = BTreeMap::new();
    for (key, value) in raw.unwrap_or_default() {
        let valid_key = !key.is_empty()
            && key.len() <= 128
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !valid_key {
            return Err(format!(
                "`config`: key \"{key}\" is not allowed; use letters, digits, `_`, `-` or `.` (e.g. `chat_url`)"
            ));
        }
        let value = if value.starts_with("env:") || value.starts_with("file:") {
            let bytes = secrets
                .read(&SecretRef::new(value))
                .map_err(|why| format!("`config.{key}`: {why}"))?;
            String::from_utf8(bytes)
                .map_err(|_| format!("`config.{key}`: the referenced value is not UTF-8 text"))?
        } else {
            value
        };
        values.insert(key, value);
    }
    Ok(PluginConfig::from(values))
}

fn parse_kv(raw: Option<&RawKv>) -> Result<KvLimits, String> {
    let mut limits = KvLimits::default();
    let Some(raw) = raw else {
        return Ok(limits);
    };
    let size = |field: &str, text: &Option<String>, default: u64, max: u64| match text {
        Some(text) => {
            let value = parse_size(text).map_err(|why| format!("`kv.{field}`: {why}"))?;
            if value == 0 {
                return Err(format!("`kv.{field}`: must be more than zero"));
            }
            if value > max {
                return Err(format!(
                    "`kv.{field}`: {text} is more than the most allowed ({max} bytes)"
                ));
            }
            Ok(value)
        }
        None => Ok(default),
    };
    limits.max_key = size("max_key", &raw.max_key, limits.max_key, kv::LIMIT_MAX_KEY)?;
    limits.max_value = size(
        "max_value",
        &raw.max_value,
        limits.max_value,
        kv::LIMIT_MAX_VALUE,
    )?;
    limits.max_total = size("max_total", &raw.max_total, limits.max_total, u64::MAX)?;
    Ok(limits)
}

fn parse_retry(raw: &RawRetry) -> Result<RetryPolicy, String> {
    let defaults = RetryPolicy::default();
    let max_attempts = match raw.max_attempts {
        Some(n) if (1..=1000).contains(&n) => n,
        Some(n) => {
            return Err(format!(
                "`retry.max_attempts`: {n} is out of range; use 1 (no retries) to 1000"
            ));
        }
        None => defaults.max_attempts,
    };
    let duration = |field: &str, text: &Option<String>, default: Duration| match text {
        Some(text) => {
            let value = parse_duration(text).map_err(|why| format!("`retry.{field}`: {why}"))?;
            if value.is_zero() {
                return Err(format!("`retry.{field}`: must be more than zero"));
            }
            Ok(value)
        }
        None => Ok(default),
    };
    let base = duration("base", &raw.base, defaults.base)?;
    let max = duration("max", &raw.max, defaults.max.max(base))?;
    if max < base {
        return Err(format!(
            "`retry.max` ({}) is shorter than `retry.base` ({}); make it at least as long",
            humantime::format_duration(max),
            humantime::format_duration(base)
        ));
    }
    Ok(RetryPolicy {
        max_attempts,
        base,
        max,
    })
}

/// Describes a TOML error by line and column without quoting the source:
/// toml's own rendering prints the offending line, and serde's messages can
/// repeat the value, either of which may be a literal secret. Values written
/// under `[verify]` are masked wherever they appear in the message.
fn toml_error(err: &toml::de::Error, text: &str) -> String {
    let mut message = err.message().trim_end().to_owned();
    for secret in verify_values(text) {
        message = message.replace(&secret, "<redacted>");
    }
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            match key_at(text, line) {
                Some(key) => {
                    format!("invalid manifest at line {line}, column {column} (`{key}`): {message}")
                }
                None => format!("invalid manifest at line {line}, column {column}: {message}"),
            }
        }
        None => format!("invalid manifest: {message}"),
    }
}

/// The dotted key assigned on `line` (1-based), e.g. `limits.timeout`, from
/// the key itself and the nearest `[table]` header above it. Never the value.
fn key_at(text: &str, line: usize) -> Option<String> {
    let mut table = None;
    for (number, content) in text.lines().enumerate() {
        let content = content.trim();
        if number + 1 == line {
            let (key, _) = content.split_once('=')?;
            let key = key.trim().trim_matches('"');
            return Some(match &table {
                Some(table) => format!("{table}.{key}"),
                None => key.to_owned(),
            });
        }
        if let Some(header) = content.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
            table = Some(header.trim().to_owned());
        }
    }
    None
}

/// Every string under `[verify]` except the keys known not to be secret,
/// and every string under `[config]`.
fn verify_values(text: &str) -> Vec<String> {
    const NOT_SECRET: &[&str] = &[
        "scheme",
        "tolerance",
        "header",
        "prefix",
        "algorithm",
        "encoding",
        "url",
    ];
    fn strings(value: &toml::Value, out: &mut Vec<String>) {
        match value {
            toml::Value::String(s) if !s.is_empty() => out.push(s.clone()),
            toml::Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
            toml::Value::Table(table) => table.values().for_each(|item| strings(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(table) = text.parse::<toml::Table>() {
        if let Some(toml::Value::Table(verify)) = table.get("verify") {
            for (key, value) in verify {
                if !NOT_SECRET.contains(&key.as_str()) {
                    strings(value, &mut out);
                }
            }
        }
        // Any `[config]` value may be a secret written inline.
        if let Some(config) = table.get("config") {
            strings(config, &mut out);
        }
    }
    out
}

/// Checks a route: an absolute ASCII path without query, fragment or spaces.
fn check_route(route: &str) -> Result<String, String> {
    // A request path arrives percent-encoded ASCII, and routes are matched
    // byte for byte: a route with other characters could never be reached.
    if !route.is_ascii() {
        return Err(format!(
            "\"{route}\" has characters other than ASCII, so no request can ever reach it \
             (request paths arrive percent-encoded); use ASCII letters, digits, `-`, `_`, `.` and `/` \
             (e.g. \"/hooks/orders\")"
        ));
    }
    if !route.starts_with('/') {
        return Err(format!(
            "\"{route}\" must start with `/`, e.g. \"/hooks/github\""
        ));
    }
    if route.contains(['?', '#']) || route.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "\"{route}\" must be a plain path (no query, fragment or spaces)"
        ));
    }
    if route.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(format!("\"{route}\" is not a valid URL path"));
    }
    Ok(route.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str) -> Result<Manifest, String> {
        Manifest::parse(name, text, &SecretResolver::new(Path::new(".")))
    }

    #[test]
    fn no_manifest_means_defaults() {
        let manifest = parse("echo", "[limits]\n").unwrap();
        let defaults = Manifest::default_for("echo");
        assert_eq!(manifest.route, "/hooks/echo");
        assert_eq!(manifest.route, defaults.route);
        assert_eq!(manifest.timeout, defaults.timeout);
        assert_eq!(manifest.memory, defaults.memory);
        assert!(manifest.verify.is_none());
    }

    #[test]
    fn verify_table_builds_the_scheme() {
        let manifest = parse(
            "gh",
            "[verify]\nscheme = \"github\"\nsecret = \"It's a Secret to Everybody\"\n",
        )
        .unwrap();
        assert_eq!(manifest.verify.unwrap().name(), "github");
        let err = parse("gh", "[verify]\nscheme = \"githb\"\nsecret = \"x\"\n").unwrap_err();
        assert!(
            err.contains("verify.scheme") && err.contains("github"),
            "{err}"
        );
        let err = parse(
            "gh",
            "[verify]\nscheme = \"github\"\nsecret = \"env:HOOKHOST_TEST_SURELY_UNSET\"\n",
        )
        .unwrap_err();
        assert!(err.contains("HOOKHOST_TEST_SURELY_UNSET"), "{err}");
        let err = parse("gh", "[verify]\nscheme = \"github\"\nsecrett = \"x\"\n").unwrap_err();
        assert!(err.contains("unknown field `secrett`"), "{err}");
    }

    #[test]
    fn full_manifest_parses() {
        let manifest = parse(
            "gh",
            "route = \"/github\"\n[limits]\ntimeout = \"250ms\"\nmemory = \"32MiB\"\n",
        )
        .unwrap();
        assert_eq!(manifest.route, "/github");
        assert_eq!(manifest.timeout, Duration::from_millis(250));
        assert_eq!(manifest.memory, 32 * MIB);
    }

    #[test]
    fn ingress_and_body_limit_parse() {
        let manifest = parse(
            "gh",
            "[limits]\nbody = \"256KiB\"\n[ingress]\nallow = [\"10.0.0.0/8\"]\nrate = \"10/s\"\n",
        )
        .unwrap();
        assert_eq!(manifest.max_body, Some(256 * 1024));
        assert!(manifest.ingress.admit("10.1.2.3".parse().unwrap()).is_ok());
        assert!(
            manifest
                .ingress
                .admit("192.0.2.1".parse().unwrap())
                .is_err()
        );
        let err = parse("gh", "[limits]\nbody = \"1GiB\"\n").unwrap_err();
        assert!(err.contains("64MiB"), "{err}");
        let err = parse("gh", "[ingress]\nrate_per_ip = \"fast\"\n").unwrap_err();
        assert!(err.contains("ingress.rate_per_ip"), "{err}");
        let err = parse("gh", "[ingress]\nallow_ips = []\n").unwrap_err();
        assert!(err.contains("unknown field `allow_ips`"), "{err}");
    }

    #[test]
    fn queue_mode_and_retry_parse() {
        let manifest = parse("q", "route = \"/hooks/q\"\n").unwrap();
        assert_eq!(manifest.mode, Mode::Sync);
        assert_eq!(manifest.retry, RetryPolicy::default());
        assert_eq!(manifest.concurrency, DEFAULT_QUEUE_CONCURRENCY);
        let manifest = parse(
            "q",
            "mode = \"queue\"\n[retry]\nmax_attempts = 3\nbase = \"50ms\"\nmax = \"1s\"\n[queue]\nconcurrency = 2\n",
        )
        .unwrap();
        assert_eq!(manifest.mode, Mode::Queue);
        assert_eq!(
            manifest.retry,
            RetryPolicy {
                max_attempts: 3,
                base: Duration::from_millis(50),
                max: Duration::from_secs(1)
            }
        );
        assert_eq!(manifest.concurrency, 2);
        // A base above the default cap raises the cap with it.
        let manifest = parse("q", "[retry]\nbase = \"1h\"\n").unwrap();
        assert_eq!(manifest.retry.max, Duration::from_secs(3600));

        let err = parse("q", "mode = \"async\"\n").unwrap_err();
        assert!(err.contains("`mode`") && err.contains("\"queue\""), "{err}");
        let err = parse("q", "[retry]\nmax_attempts = 0\n").unwrap_err();
        assert!(err.contains("retry.max_attempts"), "{err}");
        let err = parse("q", "[retry]\nbase = \"5s\"\nmax = \"1s\"\n").unwrap_err();
        assert!(
            err.contains("retry.max") && err.contains("retry.base"),
            "{err}"
        );
        let err = parse("q", "[retry]\nbase = \"0s\"\n").unwrap_err();
        assert!(err.contains("more than zero"), "{err}");
        let err = parse("q", "[queue]\nconcurrency = 0\n").unwrap_err();
        assert!(err.contains("queue.concurrency"), "{err}");
        assert_eq!(manifest.max_pending, DEFAULT_MAX_PENDING);
        for (text, want) in [
            ("0", DEFAULT_MAX_PENDING),
            ("5", 5),
            ("100000000", MAX_MAX_PENDING),
        ] {
            let toml = format!("mode = \"queue\"\n[queue]\nmax_pending = {text}\n");
            assert_eq!(parse("q", &toml).unwrap().max_pending, want, "{text}");
        }
        for bad in ["-1", "100000001"] {
            let toml = format!("mode = \"queue\"\n[queue]\nmax_pending = {bad}\n");
            let err = parse("q", &toml).unwrap_err();
            assert!(
                err.contains("`queue.max_pending`") && err.contains("use 1 to 100000000"),
                "{err}"
            );
        }
        let manifest = parse("q", "[queue]\norder_key = \"header:X-Shop\"\n").unwrap();
        assert_eq!(
            manifest.order_key,
            Some(crate::inbox::OrderKey::Header("x-shop".into()))
        );
        let err = parse("q", "[queue]\norder_key = \"repository\"\n").unwrap_err();
        assert!(
            err.contains("`queue.order_key`") && err.contains("json:/"),
            "{err}"
        );
        let err = parse("q", "[retry]\nattempts = 3\n").unwrap_err();
        assert!(err.contains("unknown field `attempts`"), "{err}");
    }

    #[test]
    fn instance_reuse_is_opt_in_and_bounded() {
        assert_eq!(Manifest::default_for("p").max_deliveries, 1);
        assert_eq!(parse("p", "route = \"/p\"\n").unwrap().max_deliveries, 1);
        let manifest = parse("p", "[instance]\nmax_deliveries = 500\n").unwrap();
        assert_eq!(manifest.max_deliveries, 500);
        assert_eq!(manifest.grants("p").max_deliveries, 500);
        for n in [0, MAX_DELIVERIES_PER_INSTANCE + 1] {
            let err = parse("p", &format!("[instance]\nmax_deliveries = {n}\n")).unwrap_err();
            assert!(
                err.contains("`instance.max_deliveries`") && err.contains("use 1"),
                "{err}"
            );
        }
        let err = parse("p", "[instance]\nreuse = true\n").unwrap_err();
        assert!(err.contains("unknown field `reuse`"), "{err}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 100,
            base: Duration::from_secs(1),
            max: Duration::from_secs(600),
        };
        let caps: Vec<u64> = (1..=12).map(|n| policy.backoff_cap(n).as_secs()).collect();
        assert_eq!(caps, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(policy.backoff_cap(0), Duration::from_secs(1));
        assert_eq!(
            policy.backoff_cap(90),
            Duration::from_secs(600),
            "no overflow"
        );
    }

    #[test]
    fn manifest_errors_never_repeat_a_secret() {
        for text in [
            "[verify]\nscheme = \"github\"\nsecert = \"hunter2-literal\"\n",
            "[verify]\nscheme = \"github\"\nsecrets = \"hunter2-literal\"\n",
            "[verify]\nscheme = \"github\"\nsecret = [\"hunter2-literal\", 3]\n",
        ] {
            let err = parse("gh", text).unwrap_err();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("line 3"), "{err}");
            assert!(err.contains("`verify.sec"), "the key is named: {err}");
        }
    }

    #[test]
    fn capabilities_parse_with_defaults() {
        let manifest = parse("p", "route = \"/p\"\n").unwrap();
        assert_eq!(manifest.kv, KvLimits::default());
        assert_eq!(*manifest.outbound, OutboundPolicy::default());
        assert!(
            manifest.outbound.allow.is_empty(),
            "nothing granted by default"
        );
        assert_eq!(manifest.config.iter().count(), 0);

        let manifest = parse(
            "p",
            "[limits]\nhttp_timeout = \"2s\"\nhttp_response = \"4KiB\"\n\
             [kv]\nmax_key = \"64B\"\nmax_value = \"1KiB\"\nmax_total = \"1MiB\"\n\
             [allow]\nhttp = [\"API.example.com\", \"*.slack.com\", \"127.0.0.1:9000\"]\n\
             [config]\nchat_url = \"http://127.0.0.1:9000/chat\"\n",
        )
        .unwrap();
        assert_eq!(manifest.outbound.timeout, Duration::from_secs(2));
        assert_eq!(manifest.outbound.max_response, 4096);
        assert!(manifest.outbound.allows("api.example.com", 443));
        assert!(manifest.outbound.allows("hooks.slack.com", 443));
        assert!(manifest.outbound.allows("127.0.0.1", 9000));
        assert!(!manifest.outbound.allows("127.0.0.1", 9001));
        use crate::runtime::outbound::Reach;
        assert_eq!(
            manifest.outbound.reach("api.example.com", 443),
            Some(Reach::Public),
            "a name string reaches public addresses only"
        );
        assert_eq!(
            manifest.outbound.reach("127.0.0.1", 9000),
            Some(Reach::Any),
            "an IP literal grant reaches that IP"
        );
        assert_eq!(
            manifest.kv,
            KvLimits {
                max_key: 64,
                max_value: 1024,
                max_total: MIB
            }
        );
        assert_eq!(
            manifest.config.get("chat_url"),
            Some("http://127.0.0.1:9000/chat")
        );
    }

    #[test]
    fn allow_http_takes_strings_and_tables_with_private() {
        use crate::runtime::outbound::Reach;
        let manifest = parse(
            "p",
            "[allow]\nhttp = [\"api.example.com\", { host = \"internal.example:8080\", private = true }, { host = \"open.example\" }]\n",
        )
        .unwrap();
        let policy = &manifest.outbound;
        assert_eq!(policy.reach("api.example.com", 443), Some(Reach::Public));
        assert_eq!(policy.reach("internal.example", 8080), Some(Reach::Any));
        assert_eq!(policy.reach("internal.example", 8081), None);
        assert_eq!(policy.reach("open.example", 80), Some(Reach::Public));
        let shown: Vec<String> = policy.allow.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "api.example.com",
                "internal.example:8080 (private addresses too)",
                "open.example"
            ]
        );
    }

    #[test]
    fn config_references_resolve_and_values_stay_out_of_debug_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "file-value\n").unwrap();
        let env = |name: &str| match name {
            "CHAT_TOKEN" => Ok("env-value".to_owned()),
            _ => Err(std::env::VarError::NotPresent),
        };
        let resolver = SecretResolver::with_env(dir.path(), &env);
        let text = "[config]\na = \"env:CHAT_TOKEN\"\nb = \"file:token\"\nc = \"literal-value\"\n";
        let manifest = Manifest::parse("p", text, &resolver).unwrap();
        let values: Vec<_> = manifest.config.iter().collect();
        assert_eq!(
            values,
            [
                ("a", "env-value"),
                ("b", "file-value"),
                ("c", "literal-value")
            ]
        );
        let debug = format!("{manifest:?}");
        assert!(!debug.contains("-value"), "{debug}");
        assert!(debug.contains("\"a\""), "keys are shown: {debug}");

        let err = Manifest::parse("p", "[config]\na = \"env:UNSET_ONE\"\n", &resolver).unwrap_err();
        assert!(
            err.contains("`config.a`") && err.contains("UNSET_ONE"),
            "{err}"
        );
        let err = parse(
            "p",
            "[config]\nsecret = \"hunter2\"\nsecret = \"hunter2\"\n",
        )
        .unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse("p", "[config]\nnested = { a = \"hunter2\" }\n").unwrap_err();
        assert!(
            !err.contains("hunter2") && err.contains("config.nested"),
            "{err}"
        );
    }

    #[test]
    fn bad_capability_values_name_field_and_fix() {
        for (text, field) in [
            ("[allow]\nhttp = [\"http://x.com\"]\n", "`allow.http[0]`"),
            ("[allow]\nhttps = []\n", "unknown field `https`"),
            (
                "[allow]\nhttp = [3]\n",
                "`allow.http[0]`: a integer is not a host",
            ),
            (
                "[allow]\nhttp = [{ hots = \"x.com\" }]\n",
                "unknown field `hots` (expected `host` or `private`)",
            ),
            (
                "[allow]\nhttp = [\"a.com\", { private = true }]\n",
                "`allow.http[1]`: the table has no `host`",
            ),
            (
                "[allow]\nhttp = [{ host = \"x.com\", private = \"yes\" }]\n",
                "`private` must be true or false",
            ),
            ("[kv]\nmax_key = \"1MiB\"\n", "`kv.max_key`"),
            ("[kv]\nmax_total = \"0\"\n", "`kv.max_total`"),
            ("[kv]\nmax_keys = \"1\"\n", "unknown field `max_keys`"),
            ("[limits]\nhttp_timeout = \"0s\"\n", "`limits.http_timeout`"),
            (
                "[limits]\nhttp_response = \"1GiB\"\n",
                "`limits.http_response`",
            ),
            ("[config]\n\"bad key\" = \"x\"\n", "`config`"),
        ] {
            let err = parse("p", text).unwrap_err();
            assert!(err.contains(field), "{text}: {err}");
        }
    }

    #[test]
    fn an_empty_manifest_is_an_error() {
        let err = parse("gh", "  \n").unwrap_err();
        assert!(err.contains("half-written"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("gh", "rout = \"/x\"\n").unwrap_err();
        assert!(err.contains("unknown field `rout`"), "{err}");
        let err = parse("gh", "[limits]\ntimeot = \"1s\"\n").unwrap_err();
        assert!(err.contains("unknown field `timeot`"), "{err}");
    }

    #[test]
    fn bad_values_name_field_and_fix() {
        let err = parse("gh", "route = \"hooks\"\n").unwrap_err();
        assert!(
            err.starts_with("`route`:") && err.contains("start with `/`"),
            "{err}"
        );
        let err = parse("gh", "[limits]\ntimeout = \"soon\"\n").unwrap_err();
        assert!(
            err.starts_with("`limits.timeout`:") && err.contains("5s"),
            "{err}"
        );
        let err = parse("gh", "[limits]\ntimeout = \"0s\"\n").unwrap_err();
        assert!(err.contains("more than zero"), "{err}");
        let err = parse("gh", "[limits]\nmemory = \"lots\"\n").unwrap_err();
        assert!(
            err.starts_with("`limits.memory`:") && err.contains("64MiB"),
            "{err}"
        );
        let err = parse("gh", "[limits]\nmemory = \"8GiB\"\n").unwrap_err();
        assert!(err.contains("4GiB"), "{err}");
        let err = parse("gh", "route = \"/a?b\"\n").unwrap_err();
        assert!(err.contains("plain path"), "{err}");
    }

    #[test]
    fn routes_are_ascii_and_unverified_is_said_on_purpose() {
        let err = parse("p", "route = \"/hooks/café\"\n").unwrap_err();
        assert!(
            err.starts_with("`route`:") && err.contains("other than ASCII"),
            "{err}"
        );
        assert!(parse("p", "route = \"/hooks/caf%C3%A9\"\n").is_ok());
        assert!(!parse("p", "route = \"/p\"\n").unwrap().unverified);
        assert!(parse("p", "unverified = true\n").unwrap().unverified);
        let err = parse(
            "p",
            "unverified = true\n[verify]\nscheme = \"token\"\nsecret = \"x\"\n",
        )
        .unwrap_err();
        assert!(
            err.contains("`unverified = true`") && err.contains("remove one"),
            "{err}"
        );
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("hookhost-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "route = 3\n").unwrap();
        let err = Manifest::load("bad", &path).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(err.contains("route"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
