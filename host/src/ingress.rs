//! Who may send to a route, and how often: client addresses, IP allowlists
//! and rate limits.
//!
//! Owns resolving the client's address (the TCP peer, or `X-Forwarded-For`
//! when, and only when, the peer is a trusted proxy), the per-route allowlist,
//! and the per-route and per-client token buckets (GCRA: `governor`'s for
//! the route, `ClientBuckets` for clients, which can give a token back).
//! The policy of a route is built once from its manifest's `[ingress]` table;
//! checking a request is a few comparisons and one atomic operation per
//! bucket. Does not own body limits or timeouts (the server).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use serde::Deserialize;

/// How often per-client buckets of clients that have gone quiet are dropped,
/// so a flood from many addresses cannot grow memory without bound.
const FORGET_QUIET_CLIENTS_EVERY: Duration = Duration::from_secs(60);

/// The `[ingress]` table of a manifest, as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngress {
    /// Client networks allowed to send, e.g. `["192.30.252.0/22", "2001:db8::/32"]`.
    /// Absent: everyone.
    pub allow: Option<Vec<String>>,
    /// Token bucket for the whole route: `"N/PERIOD"`, e.g. `"100/s"`, `"600/1m"`.
    pub rate: Option<String>,
    /// Token bucket for each client address, same syntax.
    pub rate_per_ip: Option<String>,
}

/// A route's validated ingress policy, with its live rate-limit state.
#[derive(Default)]
pub struct IngressPolicy {
    allow: Vec<IpNet>,
    route: Option<(String, DefaultDirectRateLimiter)>,
    per_ip: Option<(String, ClientBuckets)>,
    last_forget: AtomicU64,
}

impl std::fmt::Debug for IngressPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressPolicy")
            .field("allow", &self.allow)
            .field("rate", &self.route.as_ref().map(|(text, _)| text))
            .field("rate_per_ip", &self.per_ip.as_ref().map(|(text, _)| text))
            .finish()
    }
}

/// Why a request was turned away before verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The client address is not in the route's allowlist.
    #[error("client {0} is not in the route's allowlist")]
    NotAllowed(IpAddr),
    /// A bucket is empty; try again after the given time.
    #[error("rate limit `{limit}` exceeded; retry after {retry_after:?}")]
    RateLimited {
        /// Which limit: `rate` or `rate_per_ip`.
        limit: &'static str,
        /// When a token will be available.
        retry_after: Duration,
    },
}

impl IngressPolicy {
    /// Validates `raw`; errors name the field and the fix.
    pub fn new(raw: &RawIngress) -> Result<Self, String> {
        let allow = raw
            .allow
            .iter()
            .flatten()
            .map(|text| parse_net(text).map_err(|why| format!("`ingress.allow`: {why}")))
            .collect::<Result<Vec<_>, _>>()?;
        if raw.allow.as_ref().is_some_and(Vec::is_empty) {
            return Err(
                "`ingress.allow` is empty, which would refuse everyone; remove it to allow all senders"
                    .into(),
            );
        }
        let route = match &raw.rate {
            Some(text) => Some((
                text.clone(),
                RateLimiter::direct(
                    parse_rate(text).map_err(|why| format!("`ingress.rate`: {why}"))?,
                ),
            )),
            None => None,
        };
        let per_ip = match &raw.rate_per_ip {
            Some(text) => Some((
                text.clone(),
                ClientBuckets::new(
                    parse_rate(text).map_err(|why| format!("`ingress.rate_per_ip`: {why}"))?,
                ),
            )),
            None => None,
        };
        Ok(Self {
            allow,
            route,
            per_ip,
            last_forget: AtomicU64::new(0),
        })
    }

    /// True when `other` has the same allowlist and rates as written, so the
    /// live buckets of one can serve for the other across a reload.
    pub fn same_limits(&self, other: &IngressPolicy) -> bool {
        self.allow == other.allow
            && self.route.as_ref().map(|(text, _)| text)
                == other.route.as_ref().map(|(text, _)| text)
            && self.per_ip.as_ref().map(|(text, _)| text)
                == other.per_ip.as_ref().map(|(text, _)| text)
    }

    /// Checks `client` against the allowlist, then takes a token from each
    /// bucket. The allowlist comes first so refused clients cannot drain the
    /// route's bucket; the client's bucket before the route's so one client
    /// over its own rate cannot drain the route's either; and when the
    /// route's bucket refuses, the client's token is given back: a refused
    /// request costs the client nothing.
    pub fn admit(&self, client: IpAddr) -> Result<(), Refused> {
        if !self.allow.is_empty() && !self.allow.iter().any(|net| net.contains(&client)) {
            return Err(Refused::NotAllowed(client));
        }
        let key = bucket_key(client);
        if let Some((_, buckets)) = &self.per_ip {
            self.forget_quiet_clients(buckets);
            buckets
                .take(key)
                .map_err(|retry_after| Refused::RateLimited {
                    limit: "rate_per_ip",
                    retry_after,
                })?;
        }
        if let Some((_, limiter)) = &self.route
            && let Err(not_until) = limiter.check()
        {
            if let Some((_, buckets)) = &self.per_ip {
                buckets.give_back(key);
            }
            return Err(rate_limited("rate", &not_until));
        }
        Ok(())
    }

    fn forget_quiet_clients(&self, buckets: &ClientBuckets) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let last = self.last_forget.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= FORGET_QUIET_CLIENTS_EVERY.as_secs()
            && self
                .last_forget
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            buckets.forget_full();
        }
    }
}

/// One token bucket per client (GCRA, as `governor` keeps them), with a
/// way to give a token back, which `governor` has not. Each client is the
/// time at which its bucket is full again ("theoretical arrival time");
/// a client whose bucket is full is not stored at all.
struct ClientBuckets {
    /// Time for one token to come back.
    interval: Duration,
    /// How far ahead of now a client's time may run: `burst - 1` tokens.
    tolerance: Duration,
    epoch: Instant,
    /// Per client: when its bucket is full again, as time since `epoch`.
    full_at: Mutex<HashMap<IpAddr, Duration>>,
}

impl ClientBuckets {
    fn new(quota: Quota) -> Self {
        let interval = quota.replenish_interval();
        Self {
            interval,
            tolerance: interval * quota.burst_size().get().saturating_sub(1),
            epoch: Instant::now(),
            full_at: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Duration>> {
        self.full_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one of `client`'s tokens, or says when one will be there.
    fn take(&self, client: IpAddr) -> Result<(), Duration> {
        let now = self.epoch.elapsed();
        let mut full_at = self.lock();
        let at = full_at.get(&client).copied().unwrap_or(now).max(now);
        if at > now + self.tolerance {
            return Err(at - now - self.tolerance);
        }
        full_at.insert(client, at + self.interval);
        Ok(())
    }

    /// Returns the token `client` just took.
    fn give_back(&self, client: IpAddr) {
        let now = self.epoch.elapsed();
        let mut full_at = self.lock();
        if let Some(at) = full_at.get_mut(&client) {
            *at = at.saturating_sub(self.interval);
            if *at <= now {
                full_at.remove(&client);
            }
        }
    }

    /// Drops the clients whose buckets are full again: they are the same as
    /// clients never seen, and a flood from many addresses must not grow
    /// memory without bound.
    fn forget_full(&self) {
        let now = self.epoch.elapsed();
        let mut full_at = self.lock();
        full_at.retain(|_, at| *at > now);
        full_at.shrink_to_fit();
    }
}

/// The per-client bucket of an address. An IPv6 client usually holds a whole
/// /64 and can pick any address in it, so the /64 is the client.
fn bucket_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::V6(octets.into())
        }
        v4 => v4,
    }
}

fn rate_limited(
    limit: &'static str,
    not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>,
) -> Refused {
    Refused::RateLimited {
        limit,
        retry_after: not_until.wait_time_from(DefaultClock::default().now()),
    }
}

/// The longest `PERIOD` of a rate.
const MAX_RATE_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses `"N/PERIOD"`: N requests per PERIOD, at most N at once. `PERIOD` is
/// `s`, `m`, `h` or a duration such as `10s`.
pub fn parse_rate(text: &str) -> Result<Quota, String> {
    let bad = |why: &str| {
        format!("invalid rate \"{text}\" ({why}); write e.g. \"100/s\", \"600/1m\" or \"5/10s\"")
    };
    let (count, period) = text.split_once('/').ok_or_else(|| bad("no `/`"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| bad("count is not a whole number"))?;
    let count = NonZeroU32::new(count).ok_or_else(|| bad("count must be at least 1"))?;
    let period = match period.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        other => humantime::parse_duration(other).map_err(|_| bad("unknown period"))?,
    };
    if period.is_zero() {
        return Err(bad("period must be more than zero"));
    }
    // The limiter counts in u64 nanoseconds and panics past 584 years; no
    // useful rate needs more than a year (found by fuzzing the manifest).
    if period > MAX_RATE_PERIOD {
        return Err(bad("period must be at most 365d"));
    }
    let replenish = period / count.get();
    let quota = Quota::with_period(replenish.max(Duration::from_nanos(1)))
        .ok_or_else(|| bad("period too short"))?;
    Ok(quota.allow_burst(count))
}

/// Parses `"10.0.0.0/8"`, `"2001:db8::/32"` or a bare address (a /32 or /128).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "\"{text}\" is not an IP network; write e.g. \"192.0.2.0/24\" or \"2001:db8::1\""
            )
        })
}

/// The address of the client that sent a request.
///
/// Without trusted proxies it is the TCP peer. When the peer is a trusted
/// proxy, `X-Forwarded-For` is read from the right (the entry the nearest
/// proxy appended) skipping trusted proxies; the first untrusted address is
/// the client. Entries further left are written by the client itself and are
/// never believed.
pub fn client_ip(peer: IpAddr, headers: &http::HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Ok(address) = hop.parse::<IpAddr>() else {
            // A garbled hop: stop at the last address we could trust.
            break;
        };
        client = canonical(address);
        if !is_trusted(client, trusted) {
            break;
        }
    }
    client
}

/// Headers in which a proxy says what the client asked for (scheme, host).
/// Schemes that sign the public URL (Twilio) rebuild it from them, so they
/// are believed only from a trusted proxy, like `X-Forwarded-For`.
pub const FORWARDED_HEADERS: &[&str] = &["x-forwarded-proto", "x-forwarded-host", "forwarded"];

/// `headers` as a scheme may read them from `peer`: without the
/// [`FORWARDED_HEADERS`] unless `peer` is a trusted proxy. `None` when
/// nothing had to go (the common case: no copy is made).
pub fn forwarded_for_verification(
    peer: IpAddr,
    headers: &http::HeaderMap,
    trusted: &[IpNet],
) -> Option<http::HeaderMap> {
    let forwarded = FORWARDED_HEADERS
        .iter()
        .any(|name| headers.contains_key(*name));
    if !forwarded || is_trusted(canonical(peer), trusted) {
        return None;
    }
    let mut kept = headers.clone();
    for name in FORWARDED_HEADERS {
        kept.remove(*name);
    }
    Some(kept)
}

fn is_trusted(address: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&address))
}

/// IPv4 clients of a dual-stack listener show up as `::ffff:a.b.c.d`.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn xff(value: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_proto_and_host_reach_verification_only_from_trusted_proxies() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "hooks.example.com".parse().unwrap());
        headers.insert("x-forwarded-proto", "http".parse().unwrap());
        headers.insert("x-forwarded-host", "evil.example".parse().unwrap());
        let trusted = [parse_net("10.0.0.0/8").unwrap()];
        let kept = forwarded_for_verification(ip("203.0.113.9"), &headers, &trusted).unwrap();
        assert!(!kept.contains_key("x-forwarded-proto") && !kept.contains_key("x-forwarded-host"));
        assert_eq!(kept["host"], "hooks.example.com");
        assert_eq!(
            forwarded_for_verification(ip("10.0.0.1"), &headers, &trusted),
            None
        );
        // `::ffff:10.0.0.1` is the same trusted proxy.
        assert_eq!(
            forwarded_for_verification(ip("::ffff:10.0.0.1"), &headers, &trusted),
            None
        );
        let plain = http::HeaderMap::new();
        assert_eq!(
            forwarded_for_verification(ip("203.0.113.9"), &plain, &trusted),
            None
        );
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let headers = xff("1.2.3.4");
        assert_eq!(
            client_ip(ip("203.0.113.9"), &headers, &[]),
            ip("203.0.113.9")
        );
        let trusted = [parse_net("10.0.0.0/8").unwrap()];
        assert_eq!(
            client_ip(ip("203.0.113.9"), &headers, &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_for_is_read_right_to_left_through_trusted_proxies() {
        let trusted = [parse_net("10.0.0.0/8").unwrap()];
        // client-forged, real client, inner proxy
        let headers = xff("6.6.6.6, 198.51.100.7, 10.0.0.2");
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("198.51.100.7")
        );
        // Only proxies: the leftmost proxy is the best we know.
        let headers = xff("10.0.0.3");
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("10.0.0.3")
        );
        // Garbage stops the walk.
        let headers = xff("198.51.100.7, bogus");
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("10.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &http::HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn mapped_ipv4_is_canonical() {
        assert_eq!(
            client_ip(ip("::ffff:192.0.2.1"), &http::HeaderMap::new(), &[]),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn allowlist_admits_members_only() {
        let policy = IngressPolicy::new(&RawIngress {
            allow: Some(vec!["192.0.2.0/24".into(), "2001:db8::1".into()]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(policy.admit(ip("192.0.2.200")), Ok(()));
        assert_eq!(policy.admit(ip("2001:db8::1")), Ok(()));
        assert_eq!(
            policy.admit(ip("192.0.3.1")),
            Err(Refused::NotAllowed(ip("192.0.3.1")))
        );
    }

    #[test]
    fn rate_per_ip_is_per_client_and_says_when_to_retry() {
        let policy = IngressPolicy::new(&RawIngress {
            rate_per_ip: Some("2/m".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(policy.admit(ip("192.0.2.1")).is_ok());
        assert!(policy.admit(ip("192.0.2.1")).is_ok());
        match policy.admit(ip("192.0.2.1")) {
            Err(Refused::RateLimited { limit, retry_after }) => {
                assert_eq!(limit, "rate_per_ip");
                assert!(
                    retry_after > Duration::from_secs(20) && retry_after <= Duration::from_secs(30)
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            policy.admit(ip("192.0.2.2")).is_ok(),
            "another client has its own bucket"
        );
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let policy = IngressPolicy::new(&RawIngress {
            rate_per_ip: Some("1/h".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(policy.admit(ip("2001:db8:1:2::1")).is_ok());
        assert!(
            policy.admit(ip("2001:db8:1:2:ffff::9")).is_err(),
            "same /64"
        );
        assert!(policy.admit(ip("2001:db8:1:3::1")).is_ok(), "another /64");
    }

    #[test]
    fn a_route_refusal_gives_the_clients_token_back() {
        let policy = IngressPolicy::new(&RawIngress {
            rate: Some("1/h".into()),
            rate_per_ip: Some("2/h".into()),
            ..Default::default()
        })
        .unwrap();
        let client = ip("192.0.2.1");
        assert!(policy.admit(client).is_ok());
        for _ in 0..5 {
            assert!(matches!(
                policy.admit(client),
                Err(Refused::RateLimited { limit: "rate", .. })
            ));
        }
        // The client has spent one of its two tokens, whatever the route refused.
        let (_, buckets) = policy.per_ip.as_ref().unwrap();
        assert!(buckets.take(client).is_ok());
        assert!(buckets.take(client).is_err());
    }

    #[test]
    fn route_rate_is_shared() {
        let policy = IngressPolicy::new(&RawIngress {
            rate: Some("1/h".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(policy.admit(ip("192.0.2.1")).is_ok());
        assert!(matches!(
            policy.admit(ip("192.0.2.2")),
            Err(Refused::RateLimited { limit: "rate", .. })
        ));
    }

    #[test]
    fn bad_values_name_the_field() {
        let err = IngressPolicy::new(&RawIngress {
            allow: Some(vec!["10.0.0.0/33".into()]),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.starts_with("`ingress.allow`"), "{err}");
        let err = IngressPolicy::new(&RawIngress {
            allow: Some(vec![]),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("refuse everyone"), "{err}");
        for bad in ["100", "0/s", "x/s", "5/fortnight", "5/0s"] {
            let err = IngressPolicy::new(&RawIngress {
                rate: Some(bad.into()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(
                err.starts_with("`ingress.rate`") && err.contains("100/s"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("100/s").unwrap().burst_size().get(), 100);
        assert_eq!(
            parse_rate("600/1m").unwrap().replenish_interval(),
            Duration::from_millis(100)
        );
        assert_eq!(
            parse_rate("5/10s").unwrap().replenish_interval(),
            Duration::from_secs(2)
        );
    }
}
