//! Configuration, validated once at load: the host's own
//! ([`host`]: [`HostConfig`] and the defaults of every serve setting) and
//! each plugin's manifest ([`manifest`]: [`Manifest`]), and the host's
//! alert rules ([`alert`]: the `[[alert]]` tables of `hookhost.toml`).
//!
//! Owns turning what an operator wrote into validated values. Nothing here
//! is consulted per request except the already-validated structs. Does not
//! own reading flags, variables and `hookhost.toml` (that is
//! [`crate::settings`]) or secret references ([`crate::secret`]).

pub mod alert;
pub mod host;
pub mod manifest;

pub use alert::{AlertRule, AlertSpec, Condition, RawAlert};
pub use host::{
    DEFAULT_DEPLOY_POLL, DEFAULT_MAX_BODY, DEFAULT_MAX_BUFFERED, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT, DEFAULT_MAX_DEPLOY_BODY, DEFAULT_RELOAD_DEBOUNCE,
    DEFAULT_SPARE_INSTANCES, HostConfig, TlsFiles, WatchMode, defaults,
};
pub use manifest::{
    DEFAULT_MAX_ATTEMPTS, DEFAULT_MEMORY, DEFAULT_QUEUE_CONCURRENCY, DEFAULT_RETRY_BASE,
    DEFAULT_RETRY_MAX, DEFAULT_TIMEOUT, MAX_DELIVERIES_PER_INSTANCE, MAX_ROUTE_BODY, Manifest,
    ManifestError, Mode, RawAllow, RawInstance, RawKv, RawLimits, RawManifest, RawQueue, RawRetry,
    RetryPolicy,
};
