//! The admin routes: which request reaches which answer, and the query
//! parameters they take.

use std::time::Duration;

use http::{Method, Request};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::views::{error_json, event_json};
use super::{Admin, Answer, Refusal, auth};
use crate::config::Mode;
use crate::inbox::{EventKey, Filter, Replayed, Status};
use crate::registry::Changes;
use crate::telemetry::{Outcome, QueueGauges};

/// Events listed when the request sets no `limit`.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// The largest `limit` a list request may ask for.
pub const MAX_LIST_LIMIT: u32 = 1000;

impl Admin {
    pub(super) async fn route(&self, request: &Request<Incoming>) -> Result<Answer, Refusal> {
        auth::authorize(self.token.as_ref(), request.headers(), request.uri())?;
        let query = Query::parse(request.uri().query().unwrap_or_default())?;
        let segments: Vec<&str> = request
            .uri()
            .path()
            .trim_end_matches('/')
            .split('/')
            .skip(1)
            .collect();
        let answer = match (request.method(), segments.as_slice()) {
            (&Method::GET, ["metrics"]) => return Ok(Answer::Metrics(self.metrics().await?)),
            (&Method::GET, ["healthz"]) => Ok(json!({ "status": "ok" })),
            (&Method::GET, ["readyz"]) => self.ready().await,
            (&Method::GET, ["plugins"]) => Ok(self.plugins()),
            (&Method::POST, ["plugins", "reload"]) => self.reload().await,
            (&Method::GET, ["events"]) => self.list(&query).await,
            (&Method::POST, ["events", "replay"]) => self.replay_dead(&query).await,
            (&Method::GET, ["events", id]) => self.get(key(id, &query)?).await,
            (&Method::POST, ["events", id, "replay"]) => self.replay(key(id, &query)?).await,
            (_, ["events"] | ["events", _] | ["healthz"] | ["readyz"]) => {
                Err(Refusal::Method("GET"))
            }
            (_, ["plugins"] | ["metrics"]) => Err(Refusal::Method("GET")),
            (_, ["events", _, "replay"] | ["plugins", "reload"]) => Err(Refusal::Method("POST")),
            _ => Err(Refusal::NotFound("no such admin endpoint".into())),
        };
        answer.map(Answer::Json)
    }

    /// The Prometheus exposition, with the queue gauges read now.
    async fn metrics(&self) -> Result<String, Refusal> {
        let backlog = self
            .inbox
            .backlog()
            .await
            .map_err(|err| Refusal::Store(err.to_string()))?;
        let now = crate::inbox::now_millis();
        let oldest_age_ms = backlog.oldest_received_at.map_or(0, |at| (now - at).max(0));
        let routes = self.inbox.depths();
        Ok(self.metrics.encode(QueueGauges {
            pending: backlog.pending,
            oldest_pending_age: Duration::from_millis(oldest_age_ms as u64),
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
                json!({
                    "name": plugin.name,
                    "serving": true,
                    "route": plugin.manifest.route,
                    "mode": match plugin.manifest.mode {
                        Mode::Sync => "sync",
                        Mode::Queue => "queue",
                    },
                    "scheme": plugin.manifest.verify.as_ref().map(|s| s.name()),
                    "sha256": hex::encode(plugin.digest),
                    "loaded_at": humantime::format_rfc3339_millis(plugin.loaded_at).to_string(),
                    "max_deliveries": plugin.manifest.max_deliveries,
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
        json!({ "plugins": plugins })
    }

    /// Rescans the folder the way SIGHUP does: every manifest re-validated
    /// (secrets re-read), unchanged components not recompiled.
    async fn reload(&self) -> Result<Value, Refusal> {
        tracing::info!(folder = %self.plugins_dir.display(), "reload requested by an operator");
        let report = self
            .registry
            .reload(&self.runtime, &self.plugins_dir, Changes::Refresh)
            .await
            .map_err(|err| Refusal::Reload(format!("{err:#}")))?;
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
            Ok(Some(event)) => Ok(event_json(&event, &self.secret_headers())),
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
