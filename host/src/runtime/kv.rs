//! The `kv` import: each plugin's key-value namespace, kept in the inbox's
//! store.
//!
//! Owns the per-plugin limits ([`KvLimits`], from the manifest's `[kv]`),
//! checking keys and values before they reach the store, and turning store
//! answers into the WIT `kv.error` the guest sees. Does not own storage: reads
//! go to the store's read connections, writes through the inbox's single
//! writer (group commit), which commits them before the guest call returns
//! and checks the plugin's total inside the same transaction
//! ([`crate::inbox::KvWrite`]).
//!
//! The namespace is the plugin's name, so a hot reload (same name) keeps its
//! keys, and two plugins never share one, even when they run the same
//! component.

use std::sync::Arc;

use crate::inbox::{Inbox, KvWrite, KvWritten, StoreError};

use super::bindings::hookhost::plugin::kv::Error;

/// Default `[kv] max_key`: room for a structured key
/// (`pushes/octo/hello-world/main`) with no room for data smuggled into keys.
pub const DEFAULT_MAX_KEY: u64 = 512;
/// Default `[kv] max_value`: a JSON document of a few hundred fields.
pub const DEFAULT_MAX_VALUE: u64 = 64 * 1024;
/// Default `[kv] max_total`: keys plus values of one plugin. Bounds what one
/// plugin can make the host's database grow by.
pub const DEFAULT_MAX_TOTAL: u64 = 10 * 1024 * 1024;
/// The largest `max_key` a manifest may set: keys are listed and compared
/// whole, and are meant to be names.
pub const LIMIT_MAX_KEY: u64 = 64 * 1024;
/// The largest `max_value` a manifest may set: a value crosses the guest's
/// memory, the writer's batch and one SQLite row at once.
pub const LIMIT_MAX_VALUE: u64 = 16 * 1024 * 1024;

/// Size limits of one plugin's namespace, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLimits {
    /// Longest key (UTF-8 bytes).
    pub max_key: u64,
    /// Largest value.
    pub max_value: u64,
    /// Most bytes of keys plus values in all.
    pub max_total: u64,
}

impl Default for KvLimits {
    fn default() -> Self {
        Self {
            max_key: DEFAULT_MAX_KEY,
            max_value: DEFAULT_MAX_VALUE,
            max_total: DEFAULT_MAX_TOTAL,
        }
    }
}

/// One call's view of its plugin's namespace.
pub(super) struct Kv {
    inbox: Option<Arc<Inbox>>,
    plugin: Arc<str>,
    limits: KvLimits,
}

impl Kv {
    /// `inbox` is `None` for a runtime without a store (some tests): every
    /// call then fails with `store`.
    pub(super) fn new(inbox: Option<Arc<Inbox>>, plugin: Arc<str>, limits: KvLimits) -> Self {
        Self {
            inbox,
            plugin,
            limits,
        }
    }

    fn inbox(&self) -> Result<&Inbox, Error> {
        self.inbox
            .as_deref()
            .ok_or_else(|| Error::Store("this host has no key-value store".into()))
    }

    fn check_key(&self, key: &str) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::InvalidKey("key is empty".into()));
        }
        if key.len() as u64 > self.limits.max_key {
            return Err(Error::InvalidKey(format!(
                "key is {} bytes, over the plugin's limit of {} (`kv.max_key` in its manifest)",
                key.len(),
                self.limits.max_key
            )));
        }
        // Keys show up in logs and listings: keep them printable.
        if key.chars().any(char::is_control) {
            return Err(Error::InvalidKey(
                "key contains a control character; use printable text".into(),
            ));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        if value.len() as u64 > self.limits.max_value {
            return Err(Error::QuotaExceeded(format!(
                "value is {} bytes, over the plugin's limit of {} (`kv.max_value` in its manifest)",
                value.len(),
                self.limits.max_value
            )));
        }
        Ok(())
    }

    pub(super) async fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.check_key(&key)?;
        self.inbox()?
            .kv_get(&self.plugin, &key)
            .await
            .map_err(store_error)
    }

    pub(super) async fn list_keys(&self, prefix: String) -> Result<Vec<String>, Error> {
        self.inbox()?
            .kv_keys(&self.plugin, &prefix)
            .await
            .map_err(store_error)
    }

    pub(super) async fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.check_key(&key)?;
        self.check_value(&value)?;
        let write = KvWrite::Set {
            plugin: self.plugin.to_string(),
            key,
            value,
            max_total: self.limits.max_total,
        };
        match self.write(write).await? {
            KvWritten::Set => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub(super) async fn delete(&self, key: String) -> Result<bool, Error> {
        self.check_key(&key)?;
        let write = KvWrite::Delete {
            plugin: self.plugin.to_string(),
            key,
        };
        match self.write(write).await? {
            KvWritten::Deleted(was_set) => Ok(was_set),
            other => Err(unexpected(other)),
        }
    }

    pub(super) async fn increment(&self, key: String, delta: i64) -> Result<i64, Error> {
        self.check_key(&key)?;
        let write = KvWrite::Increment {
            plugin: self.plugin.to_string(),
            key,
            delta,
            max_value: self.limits.max_value,
            max_total: self.limits.max_total,
        };
        match self.write(write).await? {
            KvWritten::Incremented(sum) => Ok(sum),
            other => Err(unexpected(other)),
        }
    }

    async fn write(&self, write: KvWrite) -> Result<KvWritten, Error> {
        match self.inbox()?.kv_write(write).await.map_err(store_error)? {
            KvWritten::QuotaExceeded(message) => Err(Error::QuotaExceeded(message)),
            KvWritten::NotANumber(message) => Err(Error::NotANumber(message)),
            written => Ok(written),
        }
    }
}

fn store_error(err: StoreError) -> Error {
    tracing::warn!(error = %err, "key-value store failed");
    Error::Store(err.to_string())
}

fn unexpected(written: KvWritten) -> Error {
    Error::Store(format!(
        "store answered {written:?} to another kind of write"
    ))
}
