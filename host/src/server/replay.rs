//! The replay cache: refuses a byte-identical replay of a verified request
//! on routes whose scheme signs no message id (so dedupe by id cannot catch
//! it).
//!
//! Owns the bounded set of signatures seen recently. A scheme says what
//! identifies a request (its [`crate::verify::ReplayKey`]: the signature,
//! and until when a replay could still verify); the server claims it here
//! before the delivery runs and releases it when the delivery is not
//! accepted, so a sender's own retry of a failed delivery is not refused.
//!
//! Bounds: at most [`MAX_ENTRIES`] entries (~9 MiB); an entry expires when
//! its scheme's timestamp window would refuse the request anyway, and when
//! the cache is full the oldest entry is evicted. Eviction before expiry
//! reopens that one signature to a replay: it takes [`MAX_ENTRIES`] newer
//! verified requests within the window, i.e. the signing key, to force it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Most signatures remembered at once, across all routes. At 65,536
/// entries of ~140 bytes (route handle, SHA-256 of the signature, expiry,
/// map and queue slots) the cache stays under 9 MiB; a route receiving 100
/// deliveries a second fills it in 11 minutes, past the 5-minute windows
/// of most schemes.
pub const MAX_ENTRIES: usize = 65_536;

type Key = (Arc<str>, [u8; 32]);

/// Signatures seen recently, by route.
#[derive(Debug)]
pub struct ReplayCache {
    inner: Mutex<Inner>,
    max_entries: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// Each key's expiry (Unix seconds) and the number of its claim.
    seen: HashMap<Key, (i64, u64)>,
    /// Keys in claim order, with their claim's number; an entry whose key
    /// was released or claimed again since is stale and skipped.
    order: VecDeque<(Key, u64)>,
    /// Claims made so far: numbers each one.
    claims: u64,
}

/// Whether a claim found the signature new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Not seen within its window: recorded now.
    Fresh,
    /// Seen before and not expired: a replay.
    Replayed,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::with_capacity(MAX_ENTRIES)
    }
}

impl ReplayCache {
    /// A cache holding at most `max_entries` signatures.
    pub fn with_capacity(max_entries: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_entries: max_entries.max(1),
        }
    }

    /// Records `digest` (a [`crate::verify::ReplayKey`]'s) on `route` until
    /// `expires` (Unix seconds), unless it is there already and not expired
    /// at `now`.
    pub fn claim(&self, route: &str, digest: &[u8; 32], expires: i64, now: i64) -> Claim {
        let key = key(route, digest);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.seen.get(&key).is_some_and(|&(until, _)| until >= now) {
            return Claim::Replayed;
        }
        inner.claims += 1;
        let claim = inner.claims;
        inner.seen.insert(key.clone(), (expires, claim));
        inner.order.push_back((key, claim));
        inner.trim(self.max_entries, now);
        Claim::Fresh
    }

    /// Forgets a claimed signature: its delivery was not accepted, so the
    /// sender's retry must get through.
    pub fn release(&self, route: &str, digest: &[u8; 32]) {
        let key = key(route, digest);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.seen.remove(&key);
    }

    /// Signatures remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .len()
    }
}

impl Inner {
    /// Drops stale and expired entries from the front and, while over
    /// `max`, the oldest; compacts the queue when stale entries behind a
    /// live one make it longer than twice `max`.
    fn trim(&mut self, max: usize, now: i64) {
        while let Some((key, claim)) = self.order.front() {
            let live = match self.seen.get(key) {
                Some(&(expires, current)) if current == *claim => Some(expires),
                _ => None,
            };
            match live {
                // Released or claimed again since: only the queue slot goes.
                None => {}
                Some(expires) if expires < now || self.seen.len() > max => {
                    self.seen.remove(key);
                }
                Some(_) => break,
            }
            self.order.pop_front();
        }
        if self.order.len() > 2 * max {
            // Stale entries piled up behind a live one (a replayed request
            // whose delivery keeps failing is claimed and released each
            // time): keep only the live ones, in order.
            let seen = &self.seen;
            self.order
                .retain(|(key, claim)| seen.get(key).is_some_and(|&(_, c)| c == *claim));
        }
    }
}

/// The route and the scheme's digest of the signed request: fixed-size
/// entries whatever the signature's length.
fn key(route: &str, digest: &[u8; 32]) -> Key {
    (Arc::from(route), *digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A digest standing for the signed request `what`.
    fn d(what: &[u8]) -> [u8; 32] {
        use sha2::{Digest as _, Sha256};
        Sha256::digest(what).into()
    }

    #[test]
    fn a_replay_within_the_window_is_refused_and_after_it_is_new() {
        let cache = ReplayCache::default();
        assert_eq!(
            cache.claim("/hooks/a", &d(b"sig"), 1300, 1000),
            Claim::Fresh
        );
        assert_eq!(
            cache.claim("/hooks/a", &d(b"sig"), 1300, 1200),
            Claim::Replayed
        );
        // Another route, another signature: unrelated.
        assert_eq!(
            cache.claim("/hooks/b", &d(b"sig"), 1300, 1200),
            Claim::Fresh
        );
        assert_eq!(
            cache.claim("/hooks/a", &d(b"sig2"), 1300, 1200),
            Claim::Fresh
        );
        // Past its expiry the scheme's window refuses it anyway.
        assert_eq!(
            cache.claim("/hooks/a", &d(b"sig"), 1700, 1301),
            Claim::Fresh
        );
    }

    #[test]
    fn a_released_claim_lets_the_retry_through() {
        let cache = ReplayCache::default();
        assert_eq!(cache.claim("/r", &d(b"sig"), 2000, 1000), Claim::Fresh);
        cache.release("/r", &d(b"sig"));
        assert_eq!(cache.claim("/r", &d(b"sig"), 2000, 1001), Claim::Fresh);
        assert_eq!(cache.claim("/r", &d(b"sig"), 2000, 1002), Claim::Replayed);
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_oldest() {
        let cache = ReplayCache::with_capacity(100);
        for n in 0..1000u32 {
            cache.claim("/r", &d(&n.to_be_bytes()), 10_000, 1000);
        }
        assert_eq!(cache.len(), 100);
        let inner = cache.inner.lock().unwrap();
        assert!(inner.order.len() <= 200, "{}", inner.order.len());
        drop(inner);
        // The newest are still refused, the oldest were evicted.
        assert_eq!(
            cache.claim("/r", &d(&999u32.to_be_bytes()), 10_000, 1000),
            Claim::Replayed
        );
        assert_eq!(
            cache.claim("/r", &d(&0u32.to_be_bytes()), 10_000, 1000),
            Claim::Fresh
        );
    }

    #[test]
    fn expired_entries_leave_without_filling_the_cache() {
        let cache = ReplayCache::with_capacity(1000);
        for n in 0..500u32 {
            cache.claim(
                "/r",
                &d(&n.to_be_bytes()),
                1000 + i64::from(n),
                1000 + i64::from(n),
            );
        }
        // At 2000 every earlier entry has expired: the next claim trims them.
        cache.claim("/r", &d(b"late"), 2300, 2000);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn released_and_reclaimed_keys_do_not_grow_the_queue_unbounded() {
        let cache = ReplayCache::with_capacity(10);
        // A live entry at the front, and a replay whose delivery keeps
        // failing behind it.
        cache.claim("/r", &d(b"first"), i64::MAX, 0);
        for now in 0..10_000 {
            cache.claim("/r", &d(b"sig"), i64::MAX, now);
            cache.release("/r", &d(b"sig"));
        }
        assert!(cache.inner.lock().unwrap().order.len() <= 20);
    }
}
