//! Alerts: the `[[alert]]` rules of `hookhost.toml`, evaluated while the
//! host runs, each posting a signed JSON alert when it starts firing, again
//! every `repeat` while it fires, and once more when it clears.
//!
//! Owns evaluating rules ([`Alerts`]), the alert's JSON, signing it
//! (Standard Webhooks, the `whsec_` key of the rule) and posting it (through
//! the host's outbound connector, [`crate::runtime::outbound::post`]), and
//! the `hookhost_alert_firing` / `hookhost_alert_posts` metrics. Does not
//! own the rule format (that is [`crate::config::alert`]) or what a rule
//! reads: the inbox (dead and pending events), the registry (load errors)
//! and the request counters.
//!
//! Strategy: one task evaluates every rule each [`EVAL_INTERVAL`]; each
//! evaluation is one bounded read (at most [`DEAD_SCAN`] dead events, the
//! backlog, the load errors, or one route's counters), so the cost does not
//! grow with traffic. A rule's posts go through its own poster task, in
//! order (firing before resolved), with timeouts and retries, so a slow
//! receiver delays only its own rule's posts, never evaluation.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{AlertRule, Condition};
use crate::inbox::{Filter, Inbox, Status, now_millis};
use crate::registry::Registry;
use crate::telemetry::{Metrics, RouteAnswers};
use crate::verify::StandardWebhooks;

/// How often rules are evaluated: alerts are for people, a few seconds late
/// is on time, and each evaluation costs a store read per rule.
pub const EVAL_INTERVAL: Duration = Duration::from_secs(1);
/// Most dead events a `dead_letters` rule reads per evaluation (newest
/// first): a bound on the read, far above any useful threshold.
pub const DEAD_SCAN: u32 = 1000;
/// How long one post attempt may take (connect, send, first byte).
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per post, with [`RETRY_PAUSE`] doubling between them.
const POST_ATTEMPTS: u32 = 3;
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Posts a rule may have waiting; more are dropped with a warning (a
/// receiver that slow would not read them anyway).
const POST_QUEUE: usize = 16;

/// What an evaluation reads.
pub struct Sources {
    pub inbox: Arc<Inbox>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
}

/// The running rules.
pub struct Alerts {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// One rule's state between evaluations.
struct Rule {
    rule: AlertRule,
    /// Since when it fires, and when it last posted.
    firing: Option<(SystemTime, Instant)>,
    /// `error_rate`: the route's counters as sampled, oldest first.
    samples: VecDeque<(Instant, RouteAnswers)>,
    posts: mpsc::Sender<Bytes>,
    poster: JoinHandle<()>,
}

/// One evaluation of one rule.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Measured {
    value: f64,
    fires: bool,
}

impl Alerts {
    /// Starts evaluating `rules` (none: nothing runs).
    pub fn start(rules: Vec<AlertRule>, sources: Sources) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        if rules.is_empty() {
            return Self { stop, task: None };
        }
        let metrics = sources.metrics.clone();
        let mut rules: Vec<Rule> = rules
            .into_iter()
            .map(|rule| {
                metrics.alert_state(&rule.spec.name, false);
                let (posts, queue) = mpsc::channel(POST_QUEUE);
                let poster = tokio::spawn(poster(rule.clone(), queue, metrics.clone()));
                Rule {
                    rule,
                    firing: None,
                    samples: VecDeque::new(),
                    posts,
                    poster,
                }
            })
            .collect();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVAL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.wait_for(|stop| *stop) => break,
                }
                for rule in &mut rules {
                    rule.evaluate(&sources).await;
                }
            }
            // Posts already queued (a resolved, say) still go out, each
            // bounded by its timeouts and retries.
            for rule in rules {
                drop(rule.posts);
                let _ = tokio::time::timeout(Duration::from_secs(5), rule.poster).await;
            }
        });
        Self {
            stop,
            task: Some(task),
        }
    }

    /// Stops evaluating and waits (briefly) for queued posts.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Rule {
    async fn evaluate(&mut self, sources: &Sources) {
        let measured = match self.measure(sources).await {
            Ok(measured) => measured,
            Err(err) => {
                tracing::warn!(rule = %self.rule.spec.name, error = %err, "cannot evaluate alert rule");
                return;
            }
        };
        let name = &self.rule.spec.name;
        let now = Instant::now();
        match (self.firing, measured.fires) {
            (None, true) => {
                let since = SystemTime::now();
                self.firing = Some((since, now));
                sources.metrics.alert_state(name, true);
                tracing::warn!(rule = %name, value = measured.value, "alert firing");
                self.post("alert.firing", measured, since);
            }
            (Some((since, last)), true) if now.duration_since(last) >= self.rule.spec.repeat => {
                self.firing = Some((since, now));
                self.post("alert.firing", measured, since);
            }
            (Some((since, _)), false) => {
                self.firing = None;
                sources.metrics.alert_state(name, false);
                tracing::info!(rule = %name, value = measured.value, "alert resolved");
                self.post("alert.resolved", measured, since);
            }
            _ => {}
        }
    }

    async fn measure(&mut self, sources: &Sources) -> anyhow::Result<Measured> {
        Ok(match &self.rule.spec.condition {
            Condition::DeadLetters {
                route,
                window,
                threshold,
            } => {
                let events = sources
                    .inbox
                    .list(Filter {
                        status: Some(Status::Dead),
                        route: route.clone(),
                        limit: DEAD_SCAN,
                        ..Filter::default()
                    })
                    .await?;
                let since = now_millis() - crate::inbox::millis(*window);
                let count = events
                    .iter()
                    .filter(|event| event.dead_at.is_some_and(|at| at >= since))
                    .count() as u64;
                Measured {
                    value: count as f64,
                    fires: count >= *threshold,
                }
            }
            Condition::QueueAge { threshold } => {
                let backlog = sources.inbox.backlog().await?;
                let age = backlog.oldest_received_at.map_or(Duration::ZERO, |at| {
                    Duration::from_millis(u64::try_from(now_millis() - at).unwrap_or(0))
                });
                Measured {
                    value: age.as_secs_f64(),
                    fires: backlog.oldest_received_at.is_some() && age >= *threshold,
                }
            }
            Condition::FailingLoads { threshold } => {
                let failing = sources.registry.errors().len() as u64;
                Measured {
                    value: failing as f64,
                    fires: failing >= *threshold,
                }
            }
            Condition::ErrorRate {
                route,
                window,
                threshold,
            } => {
                let now = Instant::now();
                self.samples
                    .push_back((now, sources.metrics.route_answers(route)));
                // Keep one sample from before the window as its baseline.
                while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= *window {
                    self.samples.pop_front();
                }
                let first = self.samples.front().map(|s| s.1).unwrap_or_default();
                let last = self.samples.back().map(|s| s.1).unwrap_or_default();
                let total = last.total.saturating_sub(first.total);
                let errors = last.errors.saturating_sub(first.errors);
                let rate = if total == 0 {
                    0.0
                } else {
                    errors as f64 / total as f64
                };
                Measured {
                    value: rate,
                    fires: total > 0 && rate >= *threshold,
                }
            }
        })
    }

    /// Queues the alert of `kind` for the poster.
    fn post(&self, kind: &str, measured: Measured, since: SystemTime) {
        let body = alert_body(&self.rule, kind, measured, since, SystemTime::now());
        if self.posts.try_send(body).is_err() {
            tracing::warn!(rule = %self.rule.spec.name, "alert not posted: earlier posts are still waiting");
        }
    }
}

/// The alert's JSON: `type`, `timestamp`, `data` (as Standard Webhooks
/// payloads are) and a `text` line for chat webhooks.
fn alert_body(
    rule: &AlertRule,
    kind: &str,
    measured: Measured,
    since: SystemTime,
    now: SystemTime,
) -> Bytes {
    let spec = &rule.spec;
    let (route, window, threshold) = match &spec.condition {
        Condition::DeadLetters {
            route,
            window,
            threshold,
        } => (route.clone(), Some(*window), json!(threshold)),
        Condition::QueueAge { threshold } => (None, None, json!(threshold.as_secs_f64())),
        Condition::FailingLoads { threshold } => (None, None, json!(threshold)),
        Condition::ErrorRate {
            route,
            window,
            threshold,
        } => (Some(route.clone()), Some(*window), json!(threshold)),
    };
    let value = match spec.condition {
        Condition::DeadLetters { .. } | Condition::FailingLoads { .. } => {
            json!(measured.value as u64)
        }
        _ => json!(measured.value),
    };
    let state = if kind == "alert.firing" {
        "firing"
    } else {
        "resolved"
    };
    let text = format!(
        "hookhost alert `{}` {state}: {} {} (threshold {threshold}{})",
        spec.name,
        spec.condition.kind(),
        value,
        route
            .as_deref()
            .map(|r| format!(", route {r}"))
            .unwrap_or_default(),
    );
    let body = json!({
        "type": kind,
        "timestamp": rfc3339(now),
        "data": {
            "rule": spec.name,
            "kind": spec.condition.kind(),
            "route": route,
            "window": window.map(|w| humantime::format_duration(w).to_string()),
            "value": value,
            "threshold": threshold,
            "since": rfc3339(since),
        },
        "text": text,
    });
    Bytes::from(serde_json::to_vec(&body).expect("JSON values serialize"))
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Posts `rule`'s alerts in order, each signed afresh per attempt (so the
/// timestamp the receiver checks is recent), with retries.
async fn poster(rule: AlertRule, mut queue: mpsc::Receiver<Bytes>, metrics: Arc<Metrics>) {
    let spec = &rule.spec;
    let signer = match StandardWebhooks::new(vec![rule.secret.clone()], Duration::from_secs(300)) {
        Ok(signer) => signer,
        Err(_) => return, // checked when the config was read
    };
    while let Some(body) = queue.recv().await {
        let id = format!("alert_{}", uuid::Uuid::now_v7().simple());
        let mut pause = RETRY_PAUSE;
        let mut outcome = "error";
        for attempt in 1..=POST_ATTEMPTS {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let mut headers = match signer.sign_with_id(&id, &body, now) {
                Ok(headers) => headers,
                Err(err) => {
                    tracing::error!(rule = %spec.name, error = %err, "cannot sign alert");
                    break;
                }
            };
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            headers.insert(
                http::header::USER_AGENT,
                http::HeaderValue::from_static("hookhost-alerts"),
            );
            match crate::runtime::outbound::post(
                &spec.url,
                spec.loopback,
                headers,
                body.clone(),
                POST_TIMEOUT,
            )
            .await
            {
                Ok(status) if (200..300).contains(&status) => {
                    outcome = "ok";
                    break;
                }
                // The authority only: the path of a chat webhook is its secret.
                Ok(status) => tracing::warn!(
                    rule = %spec.name,
                    host = spec.url.host().unwrap_or_default(),
                    status,
                    attempt,
                    "alert post refused"
                ),
                Err(err) => tracing::warn!(
                    rule = %spec.name,
                    host = spec.url.host().unwrap_or_default(),
                    error = %err,
                    attempt,
                    "alert post failed"
                ),
            }
            if attempt < POST_ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        metrics.alert_post(&spec.name, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AlertSpec;

    #[test]
    fn the_alert_says_what_fired_and_since_when() {
        let table: toml::Table = toml::from_str(
            "name = \"dead\"\nkind = \"dead_letters\"\nroute = \"/hooks/q\"\nwindow = \"5m\"\nthreshold = 2\nurl = \"https://c.example/x\"\nsecret = \"env:K\"\n",
        )
        .unwrap();
        let spec: AlertSpec = crate::config::alert::parse_all(
            std::path::Path::new("hookhost.toml"),
            toml::Value::Array(vec![toml::Value::Table(table)]),
        )
        .unwrap()
        .remove(0);
        let rule = AlertRule {
            spec,
            secret: crate::secret::Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        };
        let since = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let body = alert_body(
            &rule,
            "alert.firing",
            Measured {
                value: 3.0,
                fires: true,
            },
            since,
            since + Duration::from_secs(60),
        );
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["type"], "alert.firing");
        assert_eq!(body["timestamp"], "2023-11-14T22:14:20Z");
        assert_eq!(
            body["data"],
            json!({
                "rule": "dead",
                "kind": "dead_letters",
                "route": "/hooks/q",
                "window": "5m",
                "value": 3,
                "threshold": 2,
                "since": "2023-11-14T22:13:20Z",
            })
        );
        assert!(
            body["text"].as_str().unwrap().contains("`dead` firing"),
            "{body}"
        );
    }
}
