//! The host's own configuration ([`HostConfig`]), validated, and the
//! defaults of every `hookhost serve` setting.
//!
//! `hookhost serve` reads flags, `HOOKHOST_*` variables and `hookhost.toml`
//! (see [`crate::settings`]); embedders and tests build a [`HostConfig`]
//! directly. Both start from the values in [`defaults`]: the flags show them
//! as text (their `--help`), [`HostConfig::new`] uses them typed, and a test
//! in `settings` checks that the two agree field by field.

use std::path::PathBuf;
use std::time::Duration;

use crate::inbox::InboxConfig;
use crate::secret::{SecretRules, Token};
use crate::units::MIB;

/// The defaults of `hookhost serve` as its flags (and `--help`) write them.
/// Typed twins: [`HostConfig::new`] and [`InboxConfig::default`].
pub mod defaults {
    /// `--listen`.
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// `--plugins`.
    pub const PLUGINS: &str = "./plugins";
    /// `--data`.
    pub const DATA: &str = "./data";
    /// `--max-body`: [`super::DEFAULT_MAX_BODY`].
    pub const MAX_BODY: &str = "1MiB";
    /// `--max-concurrency`.
    pub const MAX_CONCURRENCY: u32 = 256;
    /// `--shutdown-grace`.
    pub const SHUTDOWN_GRACE: &str = "30s";
    /// `--header-timeout`.
    pub const HEADER_TIMEOUT: &str = "10s";
    /// `--body-timeout`.
    pub const BODY_TIMEOUT: &str = "30s";
    /// `--idle-timeout`.
    pub const IDLE_TIMEOUT: &str = "60s";
    /// `--max-connections-per-client`: [`super::DEFAULT_MAX_CONNECTIONS_PER_CLIENT`].
    pub const MAX_CONNECTIONS_PER_CLIENT: usize = super::DEFAULT_MAX_CONNECTIONS_PER_CLIENT;
    /// `--max-buffered`: [`super::DEFAULT_MAX_BUFFERED`].
    pub const MAX_BUFFERED: &str = "256MiB";
    /// `--poll` given without an interval.
    pub const POLL: &str = "1s";
    /// `--reload-debounce`: [`super::DEFAULT_RELOAD_DEBOUNCE`].
    pub const RELOAD_DEBOUNCE: &str = "100ms";
    /// `--dedupe-window`.
    pub const DEDUPE_WINDOW: &str = "24h";
    /// `--retention`.
    pub const RETENTION: &str = "7d";
    /// `--deploy-poll`: [`super::DEFAULT_DEPLOY_POLL`].
    pub const DEPLOY_POLL: &str = "2s";
    /// `--max-deploy-body`: [`super::DEFAULT_MAX_DEPLOY_BODY`].
    pub const MAX_DEPLOY_BODY: &str = "64MiB";
}

/// Default `--deploy-poll`: how often the deployment store's generation is
/// checked, the backstop behind change notifications; a deploy through
/// another host serves here within this (plus a compile).
pub const DEFAULT_DEPLOY_POLL: Duration = Duration::from_secs(2);
/// Default `--max-deploy-body`: the largest `PUT /plugins/{name}` body.
/// Python components are about 19 MB, 26 MB in base64.
pub const DEFAULT_MAX_DEPLOY_BODY: u64 = 64 * MIB;

/// Default `--spare-instances`: one spare each for the 16 plugins called
/// most recently, at a few MiB at most each.
pub const DEFAULT_SPARE_INSTANCES: u32 = 16;
/// Default quiet time before a hot reload (`--reload-debounce`) while a file
/// may still be written: long enough to group the events of one `cp`, short
/// next to the 1 s in which a new plugin should answer. Complete files wait
/// [`crate::watch::SETTLED_DEBOUNCE`].
pub const DEFAULT_RELOAD_DEBOUNCE: Duration = Duration::from_millis(100);
/// Default request body limit (`--max-body`).
pub const DEFAULT_MAX_BODY: u64 = MIB;
/// Default `--max-connections`: far above what 2 cores serve, far below the
/// usual 64k file descriptors.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Default `--max-connections-per-client`: more than a busy sender's
/// connection pool, far fewer than `--max-connections`, so no one client
/// can hold every connection slot.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 256;
/// Default `--max-buffered`: request bodies held in memory at once, across
/// every connection; four of the largest (64 MiB) route bodies.
pub const DEFAULT_MAX_BUFFERED: u64 = 256 * MIB;

/// The validated configuration of a running host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Folder holding `NAME.wasm` plugins and their optional `NAME.toml` manifests.
    pub plugins_dir: PathBuf,
    /// Folder for host state (compile cache, later the inbox).
    pub data_dir: PathBuf,
    /// The only folder whose files plugin manifests' `file:` references may
    /// read (`--secrets-dir`); `None` is the plugin folder.
    pub secrets_dir: Option<PathBuf>,
    /// Where compiled plugins are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    pub max_body: u64,
    /// How many plugin calls may run at once; also sizes the instance pool.
    pub max_concurrency: u32,
    /// Most spare instances at once (`--spare-instances`); 0 disables them.
    pub spare_instances: u32,
    /// How long shutdown waits for in-flight deliveries before giving up.
    pub shutdown_grace: Duration,
    /// How the plugin folder is watched for hot reload.
    pub watch: WatchMode,
    /// Quiet time after the last change in the plugin folder before reloading.
    pub reload_debounce: Duration,
    /// Peers whose `X-Forwarded-For` is believed (load balancers, proxies).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long a client may take, from connecting, to send its first
    /// request head (TLS handshake included), and any later request head
    /// from its first byte.
    pub header_timeout: Duration,
    /// How long a connection may stay open with no request in flight, after
    /// its first request: HTTP/2 with no open stream (HTTP/1.1 keep-alive
    /// also has `header_timeout` for its next request head, from the last
    /// answer).
    pub idle_timeout: Duration,
    /// How long a client may take to send the whole body; then 408.
    pub body_timeout: Duration,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
    /// Most client connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one client address (an IPv6
    /// /64); trusted proxies are not capped.
    pub max_connections_per_client: usize,
    /// Most request-body bytes buffered at once across all requests; a
    /// request that would go over is answered 503 with `Retry-After`.
    pub max_buffered: u64,
    /// An extra trust root (PEM) for the host's own HTTPS fetches (signing
    /// keys, SNS confirmations), besides the webpki roots.
    pub verify_ca: Option<PathBuf>,
    /// The durable inbox for queue-mode routes (and sync-mode dedupe).
    pub inbox: InboxConfig,
    /// Where the inbox, plugin key-value data and deployed plugins live
    /// (`--store`): SQLite in `data_dir`, or a PostgreSQL database that a
    /// fleet of hosts shares.
    pub store: crate::pg::StoreSpec,
    /// Bearer token the admin API requires; `None` serves it only on
    /// loopback, unauthenticated.
    pub admin_token: Option<Token>,
    /// The `[[alert]]` rules of `hookhost.toml`, secrets read.
    pub alerts: Vec<super::AlertRule>,
    /// How often the deployment store is polled for changes.
    pub deploy_poll: Duration,
    /// Largest admin API deploy request body, in bytes.
    pub max_deploy_body: u64,
}

impl HostConfig {
    /// What plugin manifests' `env:`/`file:` references may read: `file:`
    /// inside `secrets_dir` (default the plugin folder), none of the host's
    /// own variables (`HOOKHOST_*`, the admin token's) or secret files (the
    /// admin token's, the TLS key). Fails if the folder cannot be opened.
    pub fn secret_rules(&self) -> anyhow::Result<SecretRules> {
        let root = self.secrets_dir.as_ref().unwrap_or(&self.plugins_dir);
        let mut rules = SecretRules::new(root).map_err(|why| {
            anyhow::anyhow!("{why} (set by --secrets-dir, default the plugin folder)")
        })?;
        if let Some(reference) = self.admin_token.as_ref().and_then(Token::reference) {
            rules = rules.deny_host_secret(reference);
        }
        if let Some(tls) = &self.tls {
            rules = rules.deny_file(&tls.key);
        }
        // Alert signing keys are the host's: no manifest may read them.
        for alert in &self.alerts {
            rules = rules.deny_host_secret(&alert.spec.secret);
        }
        Ok(rules)
    }
}

/// PEM files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl HostConfig {
    /// A configuration with every default, serving plugins from `plugins_dir`
    /// and keeping state in `data_dir`.
    pub fn new(plugins_dir: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            plugins_dir: plugins_dir.into(),
            secrets_dir: None,
            cache_dir: Some(data_dir.join("cache")),
            data_dir,
            max_body: DEFAULT_MAX_BODY,
            max_concurrency: defaults::MAX_CONCURRENCY,
            spare_instances: DEFAULT_SPARE_INSTANCES,
            shutdown_grace: Duration::from_secs(30),
            watch: WatchMode::Notify,
            reload_debounce: DEFAULT_RELOAD_DEBOUNCE,
            trusted_proxies: Vec::new(),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            tls: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            max_buffered: DEFAULT_MAX_BUFFERED,
            verify_ca: None,
            inbox: InboxConfig::default(),
            store: crate::pg::StoreSpec::Sqlite,
            admin_token: None,
            alerts: Vec::new(),
            deploy_poll: DEFAULT_DEPLOY_POLL,
            max_deploy_body: DEFAULT_MAX_DEPLOY_BODY,
        }
    }
}

/// How the plugin folder is watched for hot reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// The OS's change notifications (inotify on Linux).
    Notify,
    /// Compare file metadata at this interval: for network and FUSE file
    /// systems that deliver no notifications.
    Poll(Duration),
}
