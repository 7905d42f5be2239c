//! Alert rules: the `[[alert]]` tables of `hookhost.toml`, validated.
//!
//! Owns the rule format ([`RawAlert`], what the operator writes) and its
//! validation into [`AlertSpec`] (parsed durations, thresholds per kind, a
//! checked URL) when the file is read, then into [`AlertRule`] (the
//! `whsec_` signing secret read from its `env:`/`file:` reference) when the
//! host configuration is built. Every error names the file, the rule, the
//! field and the fix. Does not own evaluating rules or posting alerts
//! ([`crate::alert`]).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::secret::{Secret, SecretRef, SecretResolver};
use crate::units;

/// Default `repeat`: a firing rule is posted again after this long.
pub const DEFAULT_REPEAT: Duration = Duration::from_secs(3600);

/// One `[[alert]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    /// Unique name: letters, digits, `-` and `_`.
    pub name: String,
    /// `dead_letters`, `queue_age`, `failing_loads` or `error_rate`.
    pub kind: String,
    /// The route (`/hooks/NAME`): `error_rate` needs one; `dead_letters`
    /// without one counts every route.
    pub route: Option<String>,
    /// The window `dead_letters` and `error_rate` look back over.
    pub window: Option<String>,
    /// When it fires: a count (`dead_letters`, `failing_loads`), a
    /// duration (`queue_age`), a fraction 0–1 (`error_rate`).
    pub threshold: Option<toml::Value>,
    /// Where the alert is POSTed.
    pub url: String,
    /// The Standard Webhooks signing secret (`whsec_…`), as `env:VAR` or
    /// `file:PATH`.
    pub secret: String,
    /// How long a rule that keeps firing waits before posting again.
    pub repeat: Option<String>,
}

/// What a rule watches and when it fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// At least `threshold` events of `route` (every route: `None`) became
    /// dead within `window` and are still dead.
    DeadLetters {
        route: Option<String>,
        window: Duration,
        threshold: u64,
    },
    /// The oldest pending queued event is at least `threshold` old.
    QueueAge { threshold: Duration },
    /// At least `threshold` plugins' newest files failed to load.
    FailingLoads { threshold: u64 },
    /// At least `threshold` (a fraction) of `route`'s answers within
    /// `window` were 5xx.
    ErrorRate {
        route: String,
        window: Duration,
        threshold: f64,
    },
}

impl Condition {
    /// The `kind` as written.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::DeadLetters { .. } => "dead_letters",
            Condition::QueueAge { .. } => "queue_age",
            Condition::FailingLoads { .. } => "failing_loads",
            Condition::ErrorRate { .. } => "error_rate",
        }
    }
}

/// A rule checked at load, its secret not yet read.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSpec {
    pub name: String,
    pub condition: Condition,
    pub url: http::Uri,
    /// The `env:`/`file:` reference of the signing secret.
    pub secret: String,
    pub repeat: Duration,
    /// The URL names a loopback address literally (`127.0.0.1`, `[::1]`,
    /// `localhost`): only then may the post go to a non-public address.
    pub loopback: bool,
    /// The raw table, for `--print-config`.
    pub raw: toml::Table,
}

/// A rule ready to run: its spec and its signing secret.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub spec: AlertSpec,
    /// The `whsec_` secret's bytes, as written.
    pub secret: Secret,
}

/// The kinds, for errors.
const KINDS: &str = "`dead_letters`, `queue_age`, `failing_loads` or `error_rate`";

/// Checks the `alert` key of config file `file`: an array of tables.
pub fn parse_all(file: &Path, value: toml::Value) -> anyhow::Result<Vec<AlertSpec>> {
    let toml::Value::Array(items) = value else {
        anyhow::bail!(
            "{}: key `alert`: write each rule as an `[[alert]]` table",
            file.display()
        );
    };
    let mut specs: Vec<AlertSpec> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let spec = parse_one(file, index, item)?;
        if specs.iter().any(|other| other.name == spec.name) {
            anyhow::bail!(
                "{}: [[alert]] `{}`: field `name`: used by another rule; give each rule its own name",
                file.display(),
                spec.name
            );
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn parse_one(file: &Path, index: usize, item: toml::Value) -> anyhow::Result<AlertSpec> {
    let which = item
        .get("name")
        .and_then(toml::Value::as_str)
        .map_or_else(|| format!("#{}", index + 1), |name| format!("`{name}`"));
    let at = |field: &str, why: String| {
        anyhow::anyhow!(
            "{}: [[alert]] {which}: field `{field}`: {why}",
            file.display()
        )
    };
    let toml::Value::Table(table) = item else {
        return Err(at(
            "alert",
            "write each rule as an `[[alert]]` table".into(),
        ));
    };
    let raw: RawAlert = toml::Value::Table(table.clone())
        .try_into()
        .map_err(|err: toml::de::Error| {
            anyhow::anyhow!(
                "{}: [[alert]] {which}: {}; the fields are name, kind, route, window, threshold, url, secret, repeat",
                file.display(),
                err.message().trim()
            )
        })?;
    if raw.name.is_empty()
        || !raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(at(
            "name",
            "use letters, digits, `-` and `_` (it is the `rule` label of hookhost_alert_firing)"
                .into(),
        ));
    }
    let duration = |field: &str, text: &Option<String>| -> anyhow::Result<Option<Duration>> {
        text.as_deref()
            .map(|text| units::parse_duration(text).map_err(|why| at(field, why)))
            .transpose()
    };
    let window = duration("window", &raw.window)?;
    let repeat = duration("repeat", &raw.repeat)?.unwrap_or(DEFAULT_REPEAT);
    if repeat < Duration::from_secs(1) {
        return Err(at("repeat", "write at least \"1s\"".into()));
    }
    let need_window = || -> anyhow::Result<Duration> {
        match window {
            Some(w) if w >= Duration::from_secs(1) => Ok(w),
            Some(_) => Err(at("window", "write at least \"1s\"".into())),
            None => Err(at(
                "window",
                format!("`{}` needs one, e.g. window = \"10m\"", raw.kind),
            )),
        }
    };
    let no = |field: &str, set: bool| -> anyhow::Result<()> {
        if set {
            Err(at(
                field,
                format!("`{}` rules have none; remove it", raw.kind),
            ))
        } else {
            Ok(())
        }
    };
    let count = |default: u64| -> anyhow::Result<u64> {
        match &raw.threshold {
            None => Ok(default),
            Some(toml::Value::Integer(n)) if *n >= 1 => Ok(*n as u64),
            Some(_) => Err(at(
                "threshold",
                "write a whole number of at least 1, e.g. threshold = 1".into(),
            )),
        }
    };
    let route = |required: bool| -> anyhow::Result<Option<String>> {
        match &raw.route {
            Some(route) if route.starts_with('/') => Ok(Some(route.clone())),
            Some(_) => Err(at(
                "route",
                "write the route's path, e.g. route = \"/hooks/github\"".into(),
            )),
            None if required => Err(at(
                "route",
                format!(
                    "`{}` needs the route to watch, e.g. route = \"/hooks/github\"",
                    raw.kind
                ),
            )),
            None => Ok(None),
        }
    };
    let condition = match raw.kind.as_str() {
        "dead_letters" => Condition::DeadLetters {
            route: route(false)?,
            window: need_window()?,
            threshold: count(1)?,
        },
        "queue_age" => {
            no("route", raw.route.is_some())?;
            no("window", raw.window.is_some())?;
            let threshold = match &raw.threshold {
                Some(toml::Value::String(text)) => {
                    units::parse_duration(text).map_err(|why| at("threshold", why))?
                }
                _ => {
                    return Err(at(
                        "threshold",
                        "`queue_age` needs the oldest pending age that fires, e.g. threshold = \"5m\""
                            .into(),
                    ));
                }
            };
            Condition::QueueAge { threshold }
        }
        "failing_loads" => {
            no("route", raw.route.is_some())?;
            no("window", raw.window.is_some())?;
            Condition::FailingLoads {
                threshold: count(1)?,
            }
        }
        "error_rate" => {
            let threshold = match &raw.threshold {
                Some(toml::Value::Float(f)) if *f > 0.0 && *f <= 1.0 => *f,
                _ => {
                    return Err(at(
                        "threshold",
                        "`error_rate` needs the fraction of 5xx answers that fires, above 0 and at most 1, e.g. threshold = 0.05"
                            .into(),
                    ));
                }
            };
            Condition::ErrorRate {
                route: route(true)?.unwrap_or_default(),
                window: need_window()?,
                threshold,
            }
        }
        other => {
            return Err(at("kind", format!("unknown kind `{other}`; write {KINDS}")));
        }
    };
    let url: http::Uri = raw.url.parse().map_err(|_| {
        at(
            "url",
            "not a URL; write where to POST, e.g. url = \"https://chat.example.com/hooks/T0\""
                .into(),
        )
    })?;
    let host = match (url.scheme_str(), url.host()) {
        (Some("http" | "https"), Some(host)) => host.to_owned(),
        _ => {
            return Err(at(
                "url",
                "write an http:// or https:// URL with a host".into(),
            ));
        }
    };
    if SecretRef::new(raw.secret.clone()).is_literal() {
        return Err(at(
            "secret",
            "write `env:VAR` or `file:PATH` naming the `whsec_` key, never the key itself".into(),
        ));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    Ok(AlertSpec {
        name: raw.name,
        condition,
        url,
        secret: raw.secret,
        repeat,
        loopback,
        raw: table,
    })
}

impl AlertSpec {
    /// Reads the signing secret and checks it is a Standard Webhooks key.
    /// `file` is the config file, for the error.
    pub fn resolve(&self, file: &Path) -> anyhow::Result<AlertRule> {
        let at = |why: String| {
            anyhow::anyhow!(
                "{}: [[alert]] `{}`: field `secret`: {why}",
                file.display(),
                self.name
            )
        };
        let bytes = SecretResolver::new(Path::new("."))
            .read(&SecretRef::new(self.secret.clone()))
            .map_err(at)?;
        let secret = Secret::new(bytes);
        crate::verify::StandardWebhooks::new(vec![secret.clone()], Duration::from_secs(300))
            .map_err(|_| {
                at(format!(
                    "{} does not hold a Standard Webhooks key; write `whsec_` and the base64 key (`hookhost keygen` prints one)",
                    self.secret
                ))
            })?;
        Ok(AlertRule {
            spec: self.clone(),
            secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Vec<AlertSpec>> {
        let table: toml::Table = toml::from_str(text).unwrap();
        parse_all(Path::new("hookhost.toml"), table["alert"].clone())
    }

    #[test]
    fn every_kind_parses() {
        let specs = parse(
            r#"
[[alert]]
name = "dead"
kind = "dead_letters"
window = "10m"
url = "https://chat.example.com/x"
secret = "env:ALERT_KEY"

[[alert]]
name = "age"
kind = "queue_age"
threshold = "5m"
url = "http://127.0.0.1:9/x"
secret = "env:ALERT_KEY"
repeat = "30m"

[[alert]]
name = "loads"
kind = "failing_loads"
url = "https://chat.example.com/x"
secret = "file:alert.key"

[[alert]]
name = "errors"
kind = "error_rate"
route = "/hooks/github"
window = "5m"
threshold = 0.1
url = "https://chat.example.com/x"
secret = "env:ALERT_KEY"
"#,
        )
        .unwrap();
        assert_eq!(
            specs[0].condition,
            Condition::DeadLetters {
                route: None,
                window: Duration::from_secs(600),
                threshold: 1
            }
        );
        assert_eq!(specs[0].repeat, DEFAULT_REPEAT);
        assert!(!specs[0].loopback);
        assert_eq!(
            specs[1].condition,
            Condition::QueueAge {
                threshold: Duration::from_secs(300)
            }
        );
        assert!(specs[1].loopback);
        assert_eq!(specs[2].condition, Condition::FailingLoads { threshold: 1 });
        assert_eq!(specs[3].condition.kind(), "error_rate");
    }

    #[test]
    fn errors_name_the_file_the_rule_the_field_and_the_fix() {
        let base = "url = \"https://c.example/x\"\nsecret = \"env:K\"\n";
        for (rule, expect) in [
            (
                "name = \"a\"\nkind = \"dead\"\n",
                "hookhost.toml: [[alert]] `a`: field `kind`: unknown kind `dead`; write",
            ),
            (
                "name = \"a\"\nkind = \"dead_letters\"\n",
                "[[alert]] `a`: field `window`: `dead_letters` needs one, e.g. window = \"10m\"",
            ),
            (
                "name = \"a\"\nkind = \"error_rate\"\nwindow = \"1m\"\nthreshold = 5\nroute = \"/hooks/x\"\n",
                "field `threshold`: `error_rate` needs the fraction",
            ),
            (
                "name = \"a b\"\nkind = \"failing_loads\"\n",
                "field `name`: use letters",
            ),
            (
                "name = \"a\"\nkind = \"failing_loads\"\nwindow = \"1m\"\n",
                "field `window`: `failing_loads` rules have none; remove it",
            ),
            (
                "name = \"a\"\nkind = \"failing_loads\"\nsecrt = \"x\"\n",
                "unknown field `secrt`",
            ),
        ] {
            let text = format!("[[alert]]\n{rule}{base}");
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(expect), "{err}\nexpected: {expect}");
        }
        let err = parse(
            "[[alert]]\nname = \"a\"\nkind = \"failing_loads\"\nurl = \"https://c.example/x\"\nsecret = \"whsec_abc\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("field `secret`: write `env:VAR`"), "{err}");
    }
}
