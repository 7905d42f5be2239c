//! The last hour of each route, in memory: requests, errors, latency and
//! the queue, in [`BUCKETS`] buckets of [`BUCKET_SECONDS`] each, for the
//! dashboard's charts (`GET /stats` on the admin API).
//!
//! Owns [`Series`] and the shape of its snapshot. Does not own where the
//! numbers come from: the server records each answered request, the admin
//! API samples the queue backlog once a bucket.
//!
//! Why a ring of fixed buckets: memory is bounded by the number of routes
//! (at most [`MAX_ROUTES`], each a fixed array allocated on its first
//! request), recording is a lock, an index and a few additions, and a bucket
//! from an hour ago is overwritten in place rather than expired by a timer.
//! Prometheus keeps the long history; this is what a page can show with no
//! other server to run.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds one bucket covers.
pub const BUCKET_SECONDS: u64 = 10;
/// Buckets kept per route: one hour of ten-second buckets.
pub const BUCKETS: usize = 360;
/// Routes tracked at most. Routes come from plugin manifests, so this is a
/// guard against a folder of thousands of plugins rather than a limit an
/// operator meets: past it, new routes are not charted (about 70 KiB each).
pub const MAX_ROUTES: usize = 512;

/// Latency histogram buckets: upper bounds of 0.1 ms × √2^k, k = 0..LATENCY
/// (0.1 ms to ~26 s), plus one for anything slower. √2 steps keep a
/// quantile within 41 % of the truth at 40 counters a bucket.
const LATENCY: usize = 37;

fn latency_bound_ms(index: usize) -> f64 {
    0.1 * std::f64::consts::SQRT_2.powi(index as i32)
}

fn latency_index(elapsed: Duration) -> usize {
    let ms = elapsed.as_secs_f64() * 1000.0;
    (0..LATENCY)
        .find(|&k| ms <= latency_bound_ms(k))
        .unwrap_or(LATENCY)
}

/// One route's counts for one ten-second bucket.
#[derive(Clone, Copy)]
struct Bucket {
    /// Which bucket since the Unix epoch this slot holds now; a slot still
    /// holding an older one is empty for the current hour.
    epoch: u64,
    requests: u32,
    errors: u32,
    latency: [u32; LATENCY + 1],
    /// The last queue sample in this bucket: pending events, and the age of
    /// the oldest in milliseconds.
    queue: Option<(u64, u64)>,
}

impl Bucket {
    const EMPTY: Bucket = Bucket {
        epoch: u64::MAX,
        requests: 0,
        errors: 0,
        latency: [0; LATENCY + 1],
        queue: None,
    };

    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().map(|&n| u64::from(n)).sum();
        if total == 0 {
            return None;
        }
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, &count) in self.latency.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                // Past the last bound: reported as that bound (a floor).
                return Some(latency_bound_ms(index.min(LATENCY - 1)));
            }
        }
        None
    }
}

struct Ring(Box<[Bucket; BUCKETS]>);

impl Ring {
    fn new() -> Self {
        Self(Box::new([Bucket::EMPTY; BUCKETS]))
    }

    /// The slot for bucket `epoch`, emptied first if it held an older one.
    fn slot(&mut self, epoch: u64) -> &mut Bucket {
        let slot = &mut self.0[(epoch % BUCKETS as u64) as usize];
        if slot.epoch != epoch {
            *slot = Bucket {
                epoch,
                ..Bucket::EMPTY
            };
        }
        slot
    }

    fn get(&self, epoch: u64) -> Option<&Bucket> {
        let slot = &self.0[(epoch % BUCKETS as u64) as usize];
        (slot.epoch == epoch).then_some(slot)
    }
}

/// The per-route rings. Cheap to record into from any thread.
#[derive(Default)]
pub struct Series {
    routes: Mutex<HashMap<String, Ring>>,
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series").finish_non_exhaustive()
    }
}

fn epoch_of(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / BUCKET_SECONDS
}

impl Series {
    fn with_ring(&self, route: &str, at: SystemTime, record: impl FnOnce(&mut Bucket)) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if !routes.contains_key(route) {
            if routes.len() >= MAX_ROUTES {
                return;
            }
            routes.insert(route.to_owned(), Ring::new());
        }
        if let Some(ring) = routes.get_mut(route) {
            record(ring.slot(epoch_of(at)));
        }
    }

    /// A request on `route` answered `status` after `elapsed`, at `at`. An
    /// error is any 4xx or 5xx answer: refused signatures and rate limits
    /// count, since they are what an operator looks for on a failing route.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration, at: SystemTime) {
        self.with_ring(route, at, |bucket| {
            bucket.requests = bucket.requests.saturating_add(1);
            if status >= 400 {
                bucket.errors = bucket.errors.saturating_add(1);
            }
            let slot = &mut bucket.latency[latency_index(elapsed)];
            *slot = slot.saturating_add(1);
        });
    }

    /// `route`'s queue at `at`: `pending` events, the oldest `oldest_age` old.
    pub fn queue(&self, route: &str, pending: u64, oldest_age: Duration, at: SystemTime) {
        self.with_ring(route, at, |bucket| {
            bucket.queue = Some((pending, oldest_age.as_millis() as u64));
        });
    }

    /// The hour ending with the bucket that holds `now`, for `routes` (each
    /// named once, in that order; routes never recorded show empty buckets).
    pub fn snapshot(&self, routes: &[String], now: SystemTime) -> Snapshot {
        let last = epoch_of(now);
        let first = last + 1 - BUCKETS as u64;
        let rings = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let routes = routes
            .iter()
            .map(|route| {
                let mut series = RouteSeries {
                    route: route.clone(),
                    ..RouteSeries::default()
                };
                let ring = rings.get(route);
                for epoch in first..=last {
                    let bucket = ring.and_then(|ring| ring.get(epoch));
                    series.requests.push(bucket.map_or(0, |b| b.requests));
                    series.errors.push(bucket.map_or(0, |b| b.errors));
                    series.p50_ms.push(bucket.and_then(|b| b.quantile_ms(0.5)));
                    series.p99_ms.push(bucket.and_then(|b| b.quantile_ms(0.99)));
                    let queue = bucket.and_then(|b| b.queue);
                    series.queue_depth.push(queue.map(|(pending, _)| pending));
                    series
                        .oldest_pending_age_seconds
                        .push(queue.map(|(_, age)| age as f64 / 1000.0));
                }
                series
            })
            .collect();
        Snapshot {
            start: UNIX_EPOCH + Duration::from_secs(first * BUCKET_SECONDS),
            routes,
        }
    }
}

/// An hour of every route asked for.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the first (oldest) bucket starts.
    pub start: SystemTime,
    /// One per route, each with [`BUCKETS`] values per series, oldest first.
    pub routes: Vec<RouteSeries>,
}

/// One route's hour, oldest bucket first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteSeries {
    /// The route.
    pub route: String,
    /// Requests answered in the bucket.
    pub requests: Vec<u32>,
    /// Of those, answered 4xx or 5xx.
    pub errors: Vec<u32>,
    /// Median answer time (ms; the upper bound of its histogram bucket);
    /// `None` without requests.
    pub p50_ms: Vec<Option<f64>>,
    /// 99th percentile answer time, likewise.
    pub p99_ms: Vec<Option<f64>>,
    /// Pending queued events at the bucket's sample; `None` if not sampled.
    pub queue_depth: Vec<Option<u64>>,
    /// Age of the oldest pending event at the sample, in seconds.
    pub oldest_pending_age_seconds: Vec<Option<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn requests_land_in_their_ten_second_bucket() {
        let series = Series::default();
        let now = 1_000_000;
        series.request("/a", 200, Duration::from_millis(2), at(now));
        series.request("/a", 500, Duration::from_millis(40), at(now));
        series.request("/a", 202, Duration::from_millis(2), at(now - 10));
        series.queue("/a", 7, Duration::from_secs(3), at(now));
        let snapshot = series.snapshot(&["/a".into(), "/b".into()], at(now));
        let a = &snapshot.routes[0];
        assert_eq!(a.requests.len(), BUCKETS);
        assert_eq!(a.requests[BUCKETS - 1], 2);
        assert_eq!(a.errors[BUCKETS - 1], 1);
        assert_eq!(a.requests[BUCKETS - 2], 1);
        assert_eq!(a.errors[BUCKETS - 2], 0);
        assert_eq!(a.queue_depth[BUCKETS - 1], Some(7));
        assert_eq!(a.oldest_pending_age_seconds[BUCKETS - 1], Some(3.0));
        assert_eq!(a.queue_depth[BUCKETS - 2], None);
        let p50 = a.p50_ms[BUCKETS - 1].unwrap();
        let p99 = a.p99_ms[BUCKETS - 1].unwrap();
        assert!((2.0..2.9).contains(&p50), "{p50}");
        assert!((40.0..57.0).contains(&p99), "{p99}");
        let b = &snapshot.routes[1];
        assert!(b.requests.iter().all(|&n| n == 0));
        assert!(b.p50_ms.iter().all(Option::is_none));
    }

    #[test]
    fn an_hour_later_a_bucket_is_reused_not_summed() {
        let series = Series::default();
        let now = 2_000_000;
        series.request("/a", 200, Duration::from_millis(1), at(now));
        let later = now + BUCKETS as u64 * BUCKET_SECONDS;
        series.request("/a", 200, Duration::from_millis(1), at(later));
        let snapshot = series.snapshot(&["/a".into()], at(later));
        assert_eq!(snapshot.routes[0].requests.iter().sum::<u32>(), 1);
        assert_eq!(
            snapshot.start,
            at((later / BUCKET_SECONDS + 1 - BUCKETS as u64) * BUCKET_SECONDS)
        );
    }

    #[test]
    fn routes_past_the_cap_are_not_charted() {
        let series = Series::default();
        for n in 0..MAX_ROUTES + 5 {
            series.request(&format!("/r{n}"), 200, Duration::ZERO, at(100));
        }
        assert_eq!(series.routes.lock().unwrap().len(), MAX_ROUTES);
    }
}
