//! The admin routes: which request reaches which answer, and the query
//! parameters they take.

use std::time::Duration;

use http::{Method, Request};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::views::{attempt_json, error_json, event_json};
use super::{Admin, Answer, Refusal, auth};
use crate::config::Mode;
use crate::inbox::{EventKey, Filter, Millis, Replayed, Status};
use crate::registry::{Changes, Origin};
use crate::series::{BUCKET_SECONDS, BUCKETS};
use crate::telemetry::{Outcome, QueueGauges};

/// Events listed when the request sets no `limit`.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// The largest `limit` a list request may ask for.
pub const MAX_LIST_LIMIT: u32 = 1000;

impl Admin {
    pub(super) async fn route(&self, request: Request<Incoming>) -> Result<Answer, Refusal> {
        auth::authorize(self.token.as_ref(), request.headers(), request.uri())?;
        let uri = request.uri().clone();
        let method = request.method().clone();
        let query = Query::parse(uri.query().unwrap_or_default())?;
        let segments: Vec<&str> = uri
            .path()
            .trim_end_matches('/')
            .split('/')
            .skip(1)
            .collect();
        let answer = match (&method, segments.as_slice()) {
            (&Method::GET, ["metrics"]) => return Ok(Answer::Metrics(self.metrics().await?)),
            (&Method::GET, ["healthz"]) => Ok(json!({ "status": "ok" })),
            (&Method::GET, ["readyz"]) => self.ready().await,
            (&Method::GET, ["plugins"]) => Ok(self.plugins()),
            (&Method::GET, ["stats"]) => Ok(self.stats()),
            (&Method::POST, ["plugins", "reload"]) => self.reload().await,
            (&Method::PUT, ["plugins", name]) => return self.deploy_put(name, request).await,
            (&Method::DELETE, ["plugins", name]) => self.undeploy(name).await,
            (&Method::GET, ["plugins", name, "versions"]) => self.versions(name).await,
            (&Method::POST, ["plugins", name, "rollback"]) => {
                let to =
                    match query.get("to") {
                        Some(text) => Some(text.parse::<i64>().map_err(|_| {
                            Refusal::BadRequest("to must be a version number".into())
                        })?),
                        None => None,
                    };
                self.rollback(name, to).await
            }
            (&Method::GET, ["events"]) => self.list(&query).await,
            (&Method::POST, ["events", "replay"]) => self.replay_dead(&query).await,
            (&Method::GET, ["events", id]) => self.get(key(id, &query)?).await,
            (&Method::POST, ["events", id, "replay"]) => self.replay(key(id, &query)?).await,
            (_, ["events"] | ["events", _] | ["healthz"] | ["readyz"]) => {
                Err(Refusal::Method("GET"))
            }
            (_, ["plugins"] | ["metrics"] | ["stats"]) => Err(Refusal::Method("GET")),
            (_, ["events", _, "replay"] | ["plugins", "reload"] | ["plugins", _, "rollback"]) => {
                Err(Refusal::Method("POST"))
            }
            (_, ["plugins", _]) => Err(Refusal::Method("PUT or DELETE")),
            (_, ["plugins", _, "versions"]) => Err(Refusal::Method("GET")),
            _ => Err(Refusal::NotFound("no such admin endpoint".into())),
        };
        answer.map(Answer::Json)
    }

    /// The Prometheus exposition, with the queue gauges read now.
    async fn metrics(&self) -> Result<String, Refusal> {
        // A store that cannot be read (the database is down) still leaves
        // this host's own counters worth scraping: that is when they matter.
        let backlog = match self.inbox.backlog().await {
            Ok(backlog) => {
                let now = crate::inbox::now_millis();
                let age = backlog.oldest_received_at.map_or(0, |at| (now - at).max(0));
                Some((backlog.pending, Duration::from_millis(age as u64)))
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the queue backlog for /metrics");
                None
            }
        };
        let routes = self.inbox.depths();
        Ok(self.metrics.encode(QueueGauges {
            backlog,
            routes: &routes,
        }))
    }

    /// Ready means the initial plugin load finished and the store takes a
    /// write. The first holds by construction: [`crate::run`] serves the admin
    /// listener only after that load (until then connections wait in the
    /// backlog). The second is checked with a real, committed write, because
    /// a full disk or a read-only mount shows only when writing.
    ///
    /// A plugin that fails to load does not make the host unready: every
    /// replica shares the plugin folder, so one bad file would take them all
    /// out of rotation and stop every other route too. The answer names the
    /// failed plugins instead (`failed`), as `GET /plugins` details them.
    async fn ready(&self) -> Result<Value, Refusal> {
        match self.inbox.probe().await {
            Ok(()) => {
                let serving = self.registry.plugins().len();
                let failed: Vec<String> = self.registry.errors().into_keys().collect();
                Ok(json!({ "status": "ready", "plugins": serving, "failed": failed }))
            }
            Err(err) => {
                tracing::warn!(error = %err, "not ready: the inbox store refused a write");
                Err(Refusal::NotReady("the inbox store is not writable".into()))
            }
        }
    }

    /// Serving plugins by name, each with its newest load error if its
    /// newest files are not what serves; then plugins that failed and serve
    /// nothing.
    fn plugins(&self) -> Value {
        let mut errors = self.registry.errors();
        let versions = self.deploy.loaded_versions();
        let mut plugins: Vec<Value> = self
            .registry
            .plugins()
            .iter()
            .map(|plugin| {
                let error = errors.remove(&plugin.name);
                let deliveries: serde_json::Map<String, Value> = Outcome::ALL
                    .iter()
                    .map(|o| (o.as_str().to_owned(), plugin.stats.count(*o).into()))
                    .collect();
                let version = match plugin.origin {
                    Origin::Deployed => versions.get(&plugin.name).copied(),
                    Origin::Folder => None,
                };
                json!({
                    "name": plugin.name,
                    "serving": true,
                    "source": plugin.origin.as_str(),
                    "version": version,
                    "route": plugin.manifest.route,
                    "mode": match plugin.manifest.mode {
                        Mode::Sync => "sync",
                        Mode::Queue => "queue",
                    },
                    "scheme": plugin.manifest.verify.as_ref().map(|s| s.name()),
                    "sha256": hex::encode(plugin.digest),
                    "loaded_at": humantime::format_rfc3339_millis(plugin.loaded_at).to_string(),
                    "max_deliveries": plugin.manifest.max_deliveries,
                    "settings": settings_json(&plugin.manifest),
                    "last_error": error.as_ref().map(error_json),
                    "deliveries": deliveries,
                })
            })
            .collect();
        plugins.extend(errors.iter().map(|(name, error)| {
            json!({
                "name": name,
                "serving": false,
                "last_error": error_json(error),
            })
        }));
        json!({ "host": self.inbox.config().host_id, "plugins": plugins })
    }

    /// The last hour of every serving plugin's route (`GET /stats`): per
    /// ten-second bucket, oldest first, requests and errors, p50/p99 answer
    /// time, and for queue routes the sampled backlog.
    fn stats(&self) -> Value {
        let plugins = self.registry.plugins();
        let mut served: Vec<(String, String, &'static str)> = plugins
            .iter()
            .map(|plugin| {
                let mode = match plugin.manifest.mode {
                    Mode::Sync => "sync",
                    Mode::Queue => "queue",
                };
                (plugin.manifest.route.clone(), plugin.name.clone(), mode)
            })
            .collect();
        served.sort();
        let routes: Vec<String> = served.iter().map(|(route, _, _)| route.clone()).collect();
        let snapshot = self
            .metrics
            .series()
            .snapshot(&routes, std::time::SystemTime::now());
        let routes: Vec<Value> = snapshot
            .routes
            .iter()
            .zip(&served)
            .map(|(series, (_, plugin, mode))| {
                json!({
                    "route": series.route,
                    "plugin": plugin,
                    "mode": mode,
                    "requests": series.requests,
                    "errors": series.errors,
                    "p50_ms": series.p50_ms,
                    "p99_ms": series.p99_ms,
                    "queue_depth": series.queue_depth,
                    "oldest_pending_age_seconds": series.oldest_pending_age_seconds,
                })
            })
            .collect();
        json!({
            "bucket_seconds": BUCKET_SECONDS,
            "buckets": BUCKETS,
            "start": humantime::format_rfc3339(snapshot.start).to_string(),
            "routes": routes,
        })
    }

    /// Samples every queue route's backlog into the series once a bucket,
    /// until `stop` resolves: the queue charts' points. Only while the admin
    /// API runs, since only it shows them.
    pub(super) async fn sample_queues(&self, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut tick = tokio::time::interval(Duration::from_secs(BUCKET_SECONDS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {}
            }
            let backlogs = match self.inbox.route_backlogs().await {
                Ok(backlogs) => backlogs,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot sample the queue for the dashboard");
                    continue;
                }
            };
            let now = crate::inbox::now_millis();
            let at = std::time::SystemTime::now();
            let series = self.metrics.series();
            // Every queue route gets a point, 0 when it has nothing pending.
            for plugin in self.registry.plugins().iter() {
                if plugin.manifest.mode != Mode::Queue {
                    continue;
                }
                let route = &plugin.manifest.route;
                let backlog = backlogs
                    .iter()
                    .find(|(r, _)| r == route)
                    .map(|(_, b)| *b)
                    .unwrap_or_default();
                let age = backlog.oldest_received_at.map_or(0, |at| (now - at).max(0));
                series.queue(
                    route,
                    backlog.pending,
                    Duration::from_millis(age as u64),
                    at,
                );
            }
        }
    }

    /// Rescans the folder the way SIGHUP does: every manifest re-validated
    /// (secrets re-read), unchanged components not recompiled; deployed
    /// plugins' manifests too.
    async fn reload(&self) -> Result<Value, Refusal> {
        tracing::info!(folder = %self.plugins_dir.display(), "reload requested by an operator");
        let mut report = self
            .registry
            .reload(&self.runtime, &self.plugins_dir, Changes::Refresh)
            .await
            .map_err(|err| Refusal::Reload(format!("{err:#}")))?;
        // Deployed plugins' manifests may reference secrets too.
        let deployed = self
            .deploy
            .refresh()
            .await
            .map_err(|err| Refusal::Reload(format!("{err:#}")))?;
        report.loaded.extend(deployed.loaded);
        report.removed.extend(deployed.removed);
        report.failed.extend(deployed.failed);
        Ok(json!({
            "loaded": report.loaded,
            "removed": report.removed,
            "failed": report
                .failed
                .iter()
                .map(|(name, error)| {
                    let mut value = error_json(error);
                    value["name"] = name.as_str().into();
                    value
                })
                .collect::<Vec<_>>(),
        }))
    }

    async fn list(&self, query: &Query) -> Result<Value, Refusal> {
        let status = match query.get("status") {
            Some(text) => Some(Status::parse(text).ok_or_else(|| {
                Refusal::BadRequest(format!(
                    "status \"{text}\" is not one of pending, done, dead"
                ))
            })?),
            None => None,
        };
        let limit = match query.get("limit") {
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => n,
                _ => {
                    return Err(Refusal::BadRequest(format!(
                        "limit must be a number from 1 to {MAX_LIST_LIMIT}"
                    )));
                }
            },
            None => DEFAULT_LIST_LIMIT,
        };
        let before = match query.get("before") {
            Some(text) => Some(text.parse::<i64>().map_err(|_| {
                Refusal::BadRequest("before must be an event's seq (a number)".into())
            })?),
            None => None,
        };
        let events = self
            .inbox
            .list(Filter {
                status,
                route: query.get("route").map(str::to_owned),
                before,
                received_since: query.time("since")?,
                received_until: query.time("until")?,
                limit,
            })
            .await
            .map_err(|err| Refusal::Store(err.to_string()))?;
        // The cursor for the next page, when this one is full.
        let next_before = (events.len() == limit as usize)
            .then(|| events.last().map(|e| e.seq))
            .flatten();
        Ok(json!({
            // Listed events carry no request, so nothing to redact.
            "events": events.iter().map(|event| event_json(event, &[])).collect::<Vec<_>>(),
            "next_before": next_before,
        }))
    }

    async fn get(&self, key: EventKey) -> Result<Value, Refusal> {
        match self.inbox.get(key.clone()).await {
            Ok(Some(event)) => {
                let attempts = self
                    .inbox
                    .attempts(event.seq)
                    .await
                    .map_err(|err| Refusal::Store(err.to_string()))?;
                let mut value = event_json(&event, &self.secret_headers());
                value["attempt_log"] = attempts.iter().map(attempt_json).collect();
                Ok(value)
            }
            Ok(None) => Err(Refusal::NotFound(format!("no event with id {}", key.id))),
            Err(err) => Err(Refusal::Store(err.to_string())),
        }
    }

    /// `POST /events/replay?status=dead[&route=R]`: every dead event (of
    /// the route) pending again. `status=dead` is required, so that the
    /// request says what it replays: done events were handled, and pending
    /// ones will be attempted anyway.
    async fn replay_dead(&self, query: &Query) -> Result<Value, Refusal> {
        match query.get("status") {
            Some("dead") => {}
            Some(other) => {
                return Err(Refusal::BadRequest(format!(
                    "status \"{other}\" cannot be replayed in bulk; only status=dead \
                     (replay a done event by id with POST /events/{{id}}/replay)"
                )));
            }
            None => {
                return Err(Refusal::BadRequest(
                    "bulk replay needs status=dead: POST /events/replay?status=dead[&route=/hooks/NAME]"
                        .into(),
                ));
            }
        }
        let route = query.get("route");
        let replayed = self
            .inbox
            .replay_dead(route)
            .await
            .map_err(|err| Refusal::Store(err.to_string()))?;
        tracing::info!(
            route = route.unwrap_or("(all)"),
            events = replayed,
            "dead events replayed by an operator"
        );
        Ok(json!({ "replayed": replayed }))
    }

    async fn replay(&self, key: EventKey) -> Result<Value, Refusal> {
        match self.inbox.replay(key.clone()).await {
            Ok(Replayed::Replayed { seq, .. }) => {
                tracing::info!(id = %key.id, seq, "event replayed by an operator");
                self.get(key).await
            }
            Ok(Replayed::Pending) => Err(Refusal::Conflict(format!(
                "event {} is still pending: it will be attempted anyway",
                key.id
            ))),
            Ok(Replayed::NotFound) => {
                Err(Refusal::NotFound(format!("no event with id {}", key.id)))
            }
            Err(err) => Err(Refusal::Store(err.to_string())),
        }
    }
}

impl Admin {
    /// Every header a live plugin's scheme reads its secret from. All
    /// plugins', not only the event's route's: the route may have changed
    /// plugin or scheme since the event was stored, and over-redacting a
    /// header costs an operator little.
    fn secret_headers(&self) -> Vec<http::HeaderName> {
        let mut names: Vec<http::HeaderName> = self
            .registry
            .plugins()
            .iter()
            .filter_map(|plugin| plugin.manifest.verify.as_ref())
            .flat_map(|scheme| scheme.secret_headers())
            .collect();
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        names
    }
}

/// The limits each call and instance of a plugin runs under, as the
/// manifest set them (or their defaults): what the dashboard's plugins page
/// shows beside each plugin.
fn settings_json(manifest: &crate::config::Manifest) -> Value {
    let mut settings = json!({
        "timeout_ms": manifest.timeout.as_millis() as u64,
        "memory_bytes": manifest.memory,
        "max_body_bytes": manifest.max_body,
        "max_deliveries": manifest.max_deliveries,
    });
    if manifest.mode == Mode::Queue {
        settings["concurrency"] = manifest.concurrency.into();
        settings["max_attempts"] = manifest.retry.max_attempts.into();
    }
    settings
}

fn key(id: &str, query: &Query) -> Result<EventKey, Refusal> {
    Ok(EventKey {
        id: percent_decode(id, false).ok_or_else(|| {
            Refusal::BadRequest("the event id is not valid percent-encoding".into())
        })?,
        route: query.get("route").map(str::to_owned),
    })
}

/// Decoded query parameters.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(text: &str) -> Result<Self, Refusal> {
        let mut pairs = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s| {
                percent_decode(s, true).ok_or_else(|| {
                    Refusal::BadRequest("the query is not valid percent-encoding".into())
                })
            };
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Self(pairs))
    }

    /// `name` as an RFC 3339 time (`2026-12-02T16:00:00Z`), in ms.
    fn time(&self, name: &str) -> Result<Option<Millis>, Refusal> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        let at = humantime::parse_rfc3339_weak(text).map_err(|_| {
            Refusal::BadRequest(format!(
                "{name} must be an RFC 3339 time such as 2026-12-02T16:00:00Z (was \"{}\")",
                text.escape_debug()
            ))
        })?;
        let ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis);
        Ok(Some(ms))
    }

    /// The last non-empty value of `name` (`?status=` means no filter).
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes `%XX` escapes (and `+` as a space in a query); `None` if malformed
/// or not UTF-8.
fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The fuzz target for the query and event-id decoding (`crate::fuzz`):
/// `data` as a query string, and as an event id. Panics only on a broken
/// invariant.
pub(crate) fn fuzz_query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(query) = Query::parse(text) {
        for (name, _) in &query.0 {
            let _ = query.get(name);
        }
        let _ = key(text, &query);
        // Text without escapes decodes to itself.
        if !text.contains(['%', '+']) {
            assert!(query.0.len() <= text.split('&').count());
        }
    }
    if let Some(decoded) = percent_decode(text, false) {
        assert!(decoded.len() <= text.len());
        if !text.contains('%') {
            assert_eq!(decoded, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_ids_are_percent_decoded() {
        let query = Query::parse("route=%2Fhooks%2Fa+b&status=&status=dead&limit=5")
            .ok()
            .unwrap();
        assert_eq!(query.get("route"), Some("/hooks/a b"));
        assert_eq!(query.get("status"), Some("dead"));
        assert_eq!(query.get("limit"), Some("5"));
        assert_eq!(query.get("before"), None);
        assert_eq!(
            percent_decode("evt%5F1+2", false).as_deref(),
            Some("evt_1+2")
        );
        assert_eq!(percent_decode("bad%2", false), None);
        assert_eq!(percent_decode("bad%zz", false), None);
        assert_eq!(percent_decode("%ff", false), None);
    }
}
