//! Filling the key cache: the host's side of schemes whose keys live at a
//! URL (SNS signing certificates, Pub/Sub's JWKS), and of SNS subscription
//! confirmations.
//!
//! Owns when a fetch happens. A scheme that lacks a key refuses with
//! [`crate::verify::Refusal::KeyUnavailable`] naming the URL it checked
//! against its host allowlist; the server asks [`Keys::fetch`], which GETs
//! it through [`crate::fetch::Fetcher`] (HTTPS, timeouts, size cap) into the
//! [`KeyCache`] the schemes read, and verifies again.
//!
//! Strategy: one fetch per URL at a time. Requests that find a fetch of
//! their URL in flight wait for it instead of starting their own, and a URL
//! fetched less than [`REFETCH_AFTER`] ago is not fetched again: a flood of
//! requests naming an unknown JWKS `kid` costs one fetch per interval, not
//! one per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fetch::{FetchError, Fetcher};
use crate::telemetry::Metrics;
use crate::verify::{FollowUp, KeyCache, KeySource};

/// The shortest time between two fetches of one URL.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// Most key URLs cached at once. A route uses one JWKS or a handful of SNS
/// certificates (one per region and rotation); 256 leaves room for many
/// routes while a flood of distinct URLs (the sender names them, within the
/// trusted hosts) cannot grow memory past 256 × 64 KiB.
pub const KEY_CACHE_ENTRIES: usize = 256;
/// How long a fetched key is used before it is fetched again. SNS
/// certificates live for months and Google's JWKS says `max-age` of hours;
/// an hour bounds how long a revoked key keeps verifying.
pub const KEY_TTL: Duration = Duration::from_secs(3600);
/// URLs whose last fetch time is remembered; past this, idle ones are
/// forgotten (the key cache itself is bounded by the verify module).
const MAX_TRACKED: usize = 1024;

/// The key cache and what fills it.
pub struct Keys {
    cache: KeyCache,
    fetcher: Fetcher,
    /// Per URL: when it was last fetched, behind a lock held while fetching.
    fetches: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
}

impl Keys {
    /// An empty key cache, filled through `fetcher`.
    pub fn new(fetcher: Fetcher) -> Self {
        Self {
            cache: KeyCache::new(KEY_CACHE_ENTRIES, KEY_TTL),
            fetcher,
            fetches: Mutex::new(HashMap::new()),
        }
    }

    /// What schemes read keys from.
    pub fn cache(&self) -> &dyn KeySource {
        &self.cache
    }

    /// Makes sure the key at `url` is in the cache: fetched now, or by a
    /// fetch that was in flight or finished less than [`REFETCH_AFTER`] ago.
    pub async fn fetch(&self, route: &str, url: &str, metrics: &Metrics) -> Result<(), FetchError> {
        let slot = self.slot(url);
        let mut last = slot.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFETCH_AFTER) {
            return Ok(());
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|_| FetchError::NotHttps("an invalid URL".into()))?;
        let result = self.fetcher.get(&uri).await;
        metrics.key_fetch(route, "key", outcome(&result));
        let body = result?;
        tracing::info!(
            host = uri.host().unwrap_or_default(),
            bytes = body.len(),
            "fetched a signing key"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        self.cache.insert(url, body, now);
        *last = Some(Instant::now());
        Ok(())
    }

    /// Confirms an SNS subscription: GETs its `SubscribeURL` (already checked
    /// against the scheme's host allowlist).
    pub async fn confirm(
        &self,
        route: &str,
        follow_up: &FollowUp,
        metrics: &Metrics,
    ) -> Result<(), FetchError> {
        let FollowUp::Get { url } = follow_up;
        let uri: http::Uri = url
            .parse()
            .map_err(|_| FetchError::NotHttps("an invalid URL".into()))?;
        let result = self.fetcher.get(&uri).await;
        metrics.key_fetch(route, "confirm", outcome(&result));
        result?;
        tracing::info!(
            host = uri.host().unwrap_or_default(),
            "confirmed the subscription"
        );
        Ok(())
    }

    fn slot(&self, url: &str) -> Arc<tokio::sync::Mutex<Option<Instant>>> {
        let mut fetches = self.fetches.lock().unwrap_or_else(|e| e.into_inner());
        if fetches.len() >= MAX_TRACKED && !fetches.contains_key(url) {
            // Keep the ones in use (someone holds or waits on their lock).
            fetches.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        fetches.entry(url.to_owned()).or_default().clone()
    }
}

fn outcome<T>(result: &Result<T, FetchError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(_) => "error",
    }
}
