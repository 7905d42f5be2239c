//! How many events each route has pending, kept in memory so that a
//! route's `[queue] max_pending` is checked on every request without asking
//! the store (no `COUNT(*)` per request).
//!
//! Owns the per-route counters, the reservation that makes the check and
//! the append one step, and the `Retry-After` a refused sender is given.
//! Does not own when a count changes: [`super::Inbox`] seeds the counters
//! from the store when it opens and moves them as its writes commit (an
//! append or a revival adds one, a replay adds what it replayed, a done or
//! dead outcome takes one away).
//!
//! The count includes appends in flight (reserved, not yet committed), so
//! concurrent requests never take a route past its limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The longest `Retry-After` given: a route that delivers nothing (its
/// plugin is stuck or gone) still has senders come back within a minute.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The pending counters of every route seen.
#[derive(Debug, Default)]
pub(crate) struct Depths {
    routes: RwLock<HashMap<String, Arc<RouteDepth>>>,
}

impl Depths {
    /// Counters starting at `pending`, by route (read from the store).
    pub fn seeded(pending: impl IntoIterator<Item = (String, u64)>) -> Self {
        let routes = pending
            .into_iter()
            .map(|(route, n)| (route, Arc::new(RouteDepth::starting_at(n))))
            .collect();
        Self {
            routes: RwLock::new(routes),
        }
    }

    /// The counter of `route`, made at zero if it has none yet.
    pub fn route(&self, route: &str) -> Arc<RouteDepth> {
        if let Some(depth) = self.routes.read().expect("depths poisoned").get(route) {
            return depth.clone();
        }
        self.routes
            .write()
            .expect("depths poisoned")
            .entry(route.to_owned())
            .or_insert_with(|| Arc::new(RouteDepth::starting_at(0)))
            .clone()
    }

    /// Sets every route's count to what the store holds (`pending`; a route
    /// missing from it has none). For a store other hosts share, where
    /// events are appended and settled elsewhere; appends in flight on this
    /// host are counted again as they commit.
    pub fn resync(&self, pending: impl IntoIterator<Item = (String, u64)>) {
        let pending: HashMap<String, u64> = pending.into_iter().collect();
        for (route, depth) in self.routes.read().expect("depths poisoned").iter() {
            depth
                .pending
                .store(pending.get(route).copied().unwrap_or(0), Ordering::Release);
        }
        for (route, n) in &pending {
            if !self
                .routes
                .read()
                .expect("depths poisoned")
                .contains_key(route)
            {
                self.route(route).pending.store(*n, Ordering::Release);
            }
        }
    }

    /// Every route's pending count, by route name.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = self
            .routes
            .read()
            .expect("depths poisoned")
            .iter()
            .map(|(route, depth)| (route.clone(), depth.pending()))
            .collect();
        all.sort();
        all
    }
}

/// One route's pending events, and how fast they have been leaving.
#[derive(Debug)]
pub(crate) struct RouteDepth {
    pending: AtomicU64,
    /// Events that left pending (done or dead) since start: the drain rate.
    settled: AtomicU64,
    drain: Mutex<Drain>,
}

/// The last drain-rate measurement.
#[derive(Debug)]
struct Drain {
    since: Instant,
    settled: u64,
    /// Events per second over the last whole measurement, once there is one.
    rate: Option<f64>,
}

impl RouteDepth {
    fn starting_at(pending: u64) -> Self {
        Self {
            pending: AtomicU64::new(pending),
            settled: AtomicU64::new(0),
            drain: Mutex::new(Drain {
                since: Instant::now(),
                settled: 0,
                rate: None,
            }),
        }
    }

    /// Events pending now (appends in flight included).
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Room for one more event if fewer than `max` are pending: the count is
    /// taken now, and given back when the [`Reservation`] is dropped without
    /// [`Reservation::keep`] (a duplicate, a failed write).
    pub fn reserve(self: &Arc<Self>, max: u64) -> Option<Reservation> {
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Reservation {
            depth: Some(self.clone()),
        })
    }

    /// `n` events became pending (replayed).
    pub fn add(&self, n: u64) {
        self.pending.fetch_add(n, Ordering::AcqRel);
    }

    /// One event left pending (done or dead).
    pub fn settle(&self) {
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(1))
            });
        self.settled.fetch_add(1, Ordering::Relaxed);
    }

    /// What a sender refused by `max` should wait before trying again: the
    /// time the route's recent drain rate takes to free a hundredth of `max`
    /// (at least one event), rounded up to whole seconds, from 1 s to
    /// [`MAX_RETRY_AFTER`] (which is also the answer while nothing drains).
    pub fn retry_after(&self, max: u64) -> Duration {
        let rate = self.drain_rate(Instant::now());
        let room = (max / 100).max(1) as f64;
        let max_secs = MAX_RETRY_AFTER.as_secs();
        let secs = if rate > 0.0 {
            ((room / rate).ceil() as u64).clamp(1, max_secs)
        } else {
            max_secs
        };
        Duration::from_secs(secs)
    }

    /// Events per second that left pending: over the last second or more
    /// (measured when a sender is refused, so it costs nothing otherwise).
    fn drain_rate(&self, now: Instant) -> f64 {
        let settled = self.settled.load(Ordering::Relaxed);
        let mut drain = self.drain.lock().expect("drain poisoned");
        let elapsed = now.saturating_duration_since(drain.since);
        let current = || settled.saturating_sub(drain.settled) as f64 / elapsed.as_secs_f64();
        if elapsed >= Duration::from_secs(1) {
            let rate = current();
            *drain = Drain {
                since: now,
                settled,
                rate: Some(rate),
            };
            return rate;
        }
        match drain.rate {
            Some(rate) => rate,
            None if elapsed.is_zero() => 0.0,
            None => current(),
        }
    }
}

/// One pending slot taken for an append in flight.
#[derive(Debug)]
pub(crate) struct Reservation {
    depth: Option<Arc<RouteDepth>>,
}

impl Reservation {
    /// The append committed: the slot stays taken until the event settles.
    pub fn keep(mut self) {
        self.depth = None;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(depth) = self.depth.take() {
            let _ = depth
                .pending
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    Some(n.saturating_sub(1))
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_limit_and_give_back_what_was_not_kept() {
        let depths = Depths::seeded(vec![("/hooks/a".into(), 2)]);
        let a = depths.route("/hooks/a");
        let kept = a.reserve(4).unwrap();
        kept.keep();
        let dropped = a.reserve(4).unwrap();
        assert_eq!(a.pending(), 4);
        assert!(a.reserve(4).is_none(), "full");
        drop(dropped);
        assert_eq!(a.pending(), 3);
        a.settle();
        a.add(2);
        assert_eq!(a.pending(), 4);
        assert_eq!(depths.route("/hooks/b").pending(), 0);
        assert_eq!(
            depths.snapshot(),
            [("/hooks/a".to_owned(), 4), ("/hooks/b".to_owned(), 0)]
        );
        // Never below zero, whatever happens.
        let b = depths.route("/hooks/b");
        b.settle();
        assert_eq!(b.pending(), 0);
    }

    #[test]
    fn retry_after_follows_the_drain_rate_within_bounds() {
        let depth = RouteDepth::starting_at(0);
        assert_eq!(depth.retry_after(5), MAX_RETRY_AFTER, "nothing drained yet");
        let start = Instant::now();
        *depth.drain.lock().unwrap() = Drain {
            since: start - Duration::from_secs(2),
            settled: 0,
            rate: None,
        };
        for _ in 0..400 {
            depth.settle();
        }
        // 200 events/s; room for 1000 of 100,000 takes 5 s.
        assert_eq!(depth.drain_rate(start), 200.0);
        assert_eq!(depth.retry_after(100_000), Duration::from_secs(5));
        // Room for one event at 200/s: the 1 s floor.
        assert_eq!(depth.retry_after(5), Duration::from_secs(1));
        // A crawl is capped.
        assert_eq!(
            depth.retry_after(1_000_000_000),
            MAX_RETRY_AFTER,
            "10M events at 200/s"
        );
    }
}
