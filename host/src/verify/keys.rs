//! Keys that senders publish at a URL (SNS signing certificates, a JWKS for
//! Pub/Sub's tokens): the [`KeySource`] a scheme reads them from, and the
//! [`KeyCache`] the host fills.
//!
//! Strategy: verification stays pure. A scheme that needs a key it does not
//! find answers [`super::Refusal::KeyUnavailable`] with a URL it has already
//! checked against the manifest; the host fetches it (its own timeouts and
//! size limits), [`KeyCache::insert`]s the bytes and calls verify again.
//! The cache holds the bytes as fetched (PEM certificate, JWKS JSON); each
//! scheme parses them, which costs microseconds next to the signature check.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;

/// Where a scheme finds keys fetched from a URL.
pub trait KeySource: Send + Sync {
    /// The bytes fetched from `url`, if held and not expired at `now`
    /// (Unix seconds).
    fn get(&self, url: &str, now: i64) -> Option<Bytes>;
}

/// Holds nothing: for schemes that never need a fetched key, and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKeys;

impl KeySource for NoKeys {
    fn get(&self, _url: &str, _now: i64) -> Option<Bytes> {
        None
    }
}

/// Fetched keys by URL, bounded in entries and age. Time is passed in, as
/// everywhere in verification.
#[derive(Debug)]
pub struct KeyCache {
    capacity: usize,
    ttl: i64,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    bytes: Bytes,
    fetched: i64,
}

impl KeyCache {
    /// At most `capacity` URLs (a URL is chosen by the sender, within the
    /// trusted hosts: the bound keeps a flood of distinct ones from growing
    /// memory), each kept `ttl` after it was fetched.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        KeyCache {
            capacity: capacity.max(1),
            ttl: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores what was fetched from `url` at `now`, replacing an older copy.
    /// When full, expired entries go first, then the oldest.
    pub fn insert(&self, url: &str, bytes: Bytes, now: i64) {
        let mut entries = self.entries();
        if !entries.contains_key(url) && entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, e| now.saturating_sub(e.fetched) <= ttl);
            if entries.len() >= self.capacity
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.fetched)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            url.to_owned(),
            Entry {
                bytes,
                fetched: now,
            },
        );
    }

    /// When `url` was last fetched, expired or not: lets the host rate-limit
    /// refetches (a JWKS refreshed on an unknown `kid`).
    pub fn fetched_at(&self, url: &str) -> Option<i64> {
        self.entries().get(url).map(|e| e.fetched)
    }

    /// Forgets `url`.
    pub fn remove(&self, url: &str) {
        self.entries().remove(url);
    }

    /// How many URLs are held.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether no URL is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl KeySource for KeyCache {
    fn get(&self, url: &str, now: i64) -> Option<Bytes> {
        let entries = self.entries();
        let entry = entries.get(url)?;
        (now.saturating_sub(entry.fetched) <= self.ttl).then(|| entry.bytes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_their_ttl() {
        let cache = KeyCache::new(4, Duration::from_secs(60));
        cache.insert("https://a/k", Bytes::from_static(b"key"), 1000);
        assert_eq!(cache.get("https://a/k", 1060).as_deref(), Some(&b"key"[..]));
        assert_eq!(cache.get("https://a/k", 1061), None);
        assert_eq!(cache.fetched_at("https://a/k"), Some(1000));
        assert_eq!(cache.get("https://b/k", 1000), None);
    }

    #[test]
    fn a_full_cache_drops_expired_then_oldest() {
        let cache = KeyCache::new(2, Duration::from_secs(60));
        cache.insert("a", Bytes::from_static(b"1"), 1000);
        cache.insert("b", Bytes::from_static(b"2"), 1010);
        cache.insert("c", Bytes::from_static(b"3"), 1020);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("a", 1020), None);
        assert!(cache.get("b", 1020).is_some() && cache.get("c", 1020).is_some());
        // b is expired at 1100: it goes, c stays.
        cache.insert("d", Bytes::from_static(b"4"), 1075);
        assert!(cache.get("c", 1075).is_some() && cache.get("d", 1075).is_some());
        // Replacing a held URL never evicts another.
        cache.insert("d", Bytes::from_static(b"5"), 1076);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("d", 1076).as_deref(), Some(&b"5"[..]));
    }

    #[test]
    fn no_keys_holds_nothing() {
        assert_eq!(NoKeys.get("https://a/k", 0), None);
    }
}
