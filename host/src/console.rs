//! The operator's console: `hookhost plugins`, `hookhost events
//! list|show|replay` (`replay --dead` in bulk) and `hookhost deploy`
//! (`--versions`, `--rollback`, `--undeploy`), a thin client of the admin
//! API.
//!
//! Owns talking to the admin API from the command line (address, token,
//! paths) and printing its answers as tables or JSON. Does not own what the
//! API answers ([`crate::admin`]): every number shown comes from the host.

use std::fmt::Write as _;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::secret::Token;

/// Where the admin API is, and how to get in.
#[derive(Debug)]
pub struct Target {
    /// Base URL, e.g. `http://127.0.0.1:9090`.
    pub admin: Uri,
    /// Sent as `Authorization: Bearer` when set.
    pub token: Option<Token>,
}

/// Filters for `hookhost events list`.
#[derive(Debug, Default)]
pub struct ListFilter {
    /// `pending`, `done` or `dead`.
    pub status: Option<String>,
    /// Only this route.
    pub route: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
    /// The `next_before` of the previous page.
    pub before: Option<i64>,
}

impl Target {
    /// `method path` against the admin API; the JSON answer of a 2xx, else
    /// an error carrying the API's own message.
    async fn call(&self, method: Method, path: &str) -> anyhow::Result<Value> {
        self.send(method, path, None).await
    }

    /// [`Target::call`] with a JSON body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        if self.admin.scheme_str() != Some("http") {
            anyhow::bail!(
                "--admin {}: only http:// is served by the admin API",
                self.admin
            );
        }
        let uri: Uri = format!("{}{path}", self.admin.to_string().trim_end_matches('/'))
            .parse()
            .with_context(|| format!("--admin {}: not a usable URL", self.admin))?;
        let mut builder = Request::builder().method(method).uri(uri.clone());
        if let Some(token) = &self.token {
            builder = builder.header(header::AUTHORIZATION, token.bearer());
        }
        let body = match body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(body))
            .context("cannot build the request")?;
        let client = Client::builder(TokioExecutor::new()).build_http();
        let response = client
            .request(request)
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.admin))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("{uri} closed the connection mid-answer"))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&body)
            .with_context(|| format!("{uri} answered {status} with something that is not JSON"))?;
        if !status.is_success() {
            let message = value["error"].as_str().unwrap_or("no message");
            anyhow::bail!("{status}: {message}");
        }
        Ok(value)
    }

    /// `GET /plugins`, as a table or JSON.
    pub async fn plugins(&self, json: bool) -> anyhow::Result<String> {
        let answer = self.call(Method::GET, "/plugins").await?;
        if json {
            return Ok(pretty(&answer));
        }
        let mut rows = vec![row([
            "NAME", "SOURCE", "ROUTE", "MODE", "SCHEME", "LOADED", "OK", "FAILED", "REFUSED",
            "ERROR",
        ])];
        for plugin in answer["plugins"].as_array().into_iter().flatten() {
            let deliveries = &plugin["deliveries"];
            let failed: u64 = ["retry", "reject", "trap", "timeout", "memory", "capacity"]
                .iter()
                .filter_map(|outcome| deliveries[*outcome].as_u64())
                .sum();
            let error = match &plugin["last_error"] {
                Value::Null => String::new(),
                error => format!("{}: {}", text(&error["file"]), text(&error["reason"])),
            };
            let serving = plugin["serving"] == true;
            // `deployed v3`: the version deployed through the admin API.
            let source = match plugin["version"].as_i64() {
                Some(version) => format!("{} v{version}", text(&plugin["source"])),
                None => text(&plugin["source"]),
            };
            rows.push(vec![
                text(&plugin["name"]),
                source,
                if serving {
                    text(&plugin["route"])
                } else {
                    "(not serving)".into()
                },
                text(&plugin["mode"]),
                text(&plugin["scheme"]),
                text(&plugin["loaded_at"]),
                count(&deliveries["ok"], serving),
                if serving {
                    failed.to_string()
                } else {
                    String::new()
                },
                count(&deliveries["refused"], serving),
                error,
            ]);
        }
        let mut out = table(&rows);
        if let Some(host) = answer["host"].as_str() {
            let _ = writeln!(out, "host: {host}");
        }
        Ok(out)
    }

    /// `GET /events`, as a table or JSON.
    pub async fn list(&self, filter: &ListFilter, json: bool) -> anyhow::Result<String> {
        let mut query = Vec::new();
        if let Some(status) = &filter.status {
            query.push(format!("status={}", encode(status)));
        }
        if let Some(route) = &filter.route {
            query.push(format!("route={}", encode(route)));
        }
        if let Some(limit) = filter.limit {
            query.push(format!("limit={limit}"));
        }
        if let Some(before) = filter.before {
            query.push(format!("before={before}"));
        }
        let path = match query.is_empty() {
            true => "/events".to_owned(),
            false => format!("/events?{}", query.join("&")),
        };
        let answer = self.call(Method::GET, &path).await?;
        if json {
            return Ok(pretty(&answer));
        }
        let mut rows = vec![row([
            "ID",
            "SEQ",
            "ROUTE",
            "STATUS",
            "ATTEMPTS",
            "RECEIVED",
            "HOST",
            "LAST ERROR",
        ])];
        for event in answer["events"].as_array().into_iter().flatten() {
            rows.push(vec![
                text(&event["id"]),
                text(&event["seq"]),
                text(&event["route"]),
                text(&event["status"]),
                text(&event["attempts"]),
                text(&event["received_at"]),
                text(&event["host"]),
                text(&event["last_error"]),
            ]);
        }
        let mut out = table(&rows);
        if let Some(next) = answer["next_before"].as_i64() {
            let _ = writeln!(out, "more: --before {next}");
        }
        Ok(out)
    }

    /// `GET /events/{id}`: the event and its request (secrets redacted by
    /// the host), as JSON.
    pub async fn show(&self, id: &str, route: Option<&str>) -> anyhow::Result<String> {
        let answer = self.call(Method::GET, &event_path(id, "", route)).await?;
        Ok(pretty(&answer))
    }

    /// `POST /events/{id}/replay`: one line, or the event as JSON.
    pub async fn replay(
        &self,
        id: &str,
        route: Option<&str>,
        json: bool,
    ) -> anyhow::Result<String> {
        let answer = self
            .call(Method::POST, &event_path(id, "/replay", route))
            .await?;
        if json {
            return Ok(pretty(&answer));
        }
        Ok(format!(
            "replayed {} on {}: {}, due now\n",
            text(&answer["id"]),
            text(&answer["route"]),
            text(&answer["status"])
        ))
    }

    /// `POST /events/replay?status=dead`: how many dead events (of `route`)
    /// are pending again, as one line or JSON.
    pub async fn replay_dead(&self, route: Option<&str>, json: bool) -> anyhow::Result<String> {
        let mut path = "/events/replay?status=dead".to_owned();
        if let Some(route) = route {
            let _ = write!(path, "&route={}", encode(route));
        }
        let answer = self.call(Method::POST, &path).await?;
        if json {
            return Ok(pretty(&answer));
        }
        let replayed = answer["replayed"].as_u64().unwrap_or_default();
        let noun = if replayed == 1 { "event" } else { "events" };
        Ok(match route {
            Some(route) => format!("replayed {replayed} dead {noun} on {route}, due now\n"),
            None => format!("replayed {replayed} dead {noun}, due now\n"),
        })
    }
}

impl Target {
    /// `PUT /plugins/{name}`: one line saying which version is live and
    /// whether it is new, or the API's JSON.
    pub async fn deploy(
        &self,
        name: &str,
        wasm: &[u8],
        manifest: Option<&str>,
        json: bool,
    ) -> anyhow::Result<String> {
        use base64::Engine as _;
        let body = serde_json::json!({
            "component_base64": base64::engine::general_purpose::STANDARD.encode(wasm),
            "manifest": manifest,
        });
        let answer = self
            .send(
                Method::PUT,
                &format!("/plugins/{}", encode(name)),
                Some(&body),
            )
            .await?;
        if json {
            return Ok(pretty(&answer));
        }
        let version = text(&answer["version"]);
        let sha = text(&answer["sha256"]);
        let short = sha.get(..12).unwrap_or(&sha);
        let mut out = match answer["new"] == true {
            true => format!("deployed {name} version {version} (new, sha256 {short}), now live
"),
            false => format!(
                "{name} version {version} is already live with these bytes (sha256 {short}): nothing new deployed
"
            ),
        };
        if answer["serving"] == false {
            let _ = writeln!(
                out,
                "warning: the host does not serve it yet; `hookhost plugins` shows why"
            );
        }
        Ok(out)
    }

    /// `GET /plugins/{name}/versions`, as a table or JSON.
    pub async fn versions(&self, name: &str, json: bool) -> anyhow::Result<String> {
        let answer = self
            .call(Method::GET, &format!("/plugins/{}/versions", encode(name)))
            .await?;
        if json {
            return Ok(pretty(&answer));
        }
        let mut rows = vec![row(["VERSION", "LIVE", "SHA256", "SIZE", "DEPLOYED", "BY"])];
        for version in answer["versions"].as_array().into_iter().flatten() {
            let sha = text(&version["sha256"]);
            rows.push(vec![
                text(&version["version"]),
                if version["live"] == true {
                    "live".into()
                } else {
                    String::new()
                },
                sha.get(..12).unwrap_or(&sha).to_owned(),
                text(&version["size"]),
                text(&version["deployed_at"]),
                text(&version["deployed_by"]),
            ]);
        }
        Ok(table(&rows))
    }

    /// `POST /plugins/{name}/rollback[?to=V]`: one line, or JSON.
    pub async fn rollback(
        &self,
        name: &str,
        to: Option<i64>,
        json: bool,
    ) -> anyhow::Result<String> {
        let mut path = format!("/plugins/{}/rollback", encode(name));
        if let Some(to) = to {
            let _ = write!(path, "?to={to}");
        }
        let answer = self.call(Method::POST, &path).await?;
        if json {
            return Ok(pretty(&answer));
        }
        Ok(format!(
            "rolled back {name}: version {} is live\n",
            text(&answer["version"])
        ))
    }

    /// `DELETE /plugins/{name}`: one line, or JSON.
    pub async fn undeploy(&self, name: &str, json: bool) -> anyhow::Result<String> {
        let answer = self
            .call(Method::DELETE, &format!("/plugins/{}", encode(name)))
            .await?;
        if json {
            return Ok(pretty(&answer));
        }
        Ok(format!(
            "undeployed {name}: its route answers 404; its versions are kept\n"
        ))
    }
}

fn event_path(id: &str, suffix: &str, route: Option<&str>) -> String {
    let mut path = format!("/events/{}{suffix}", encode(id));
    if let Some(route) = route {
        let _ = write!(path, "?route={}", encode(route));
    }
    path
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn pretty(value: &Value) -> String {
    let mut out = serde_json::to_string_pretty(value).unwrap_or_default();
    out.push('\n');
    out
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn count(value: &Value, serving: bool) -> String {
    if serving { text(value) } else { String::new() }
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or_default();
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or_default()
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_routes_are_percent_encoded() {
        assert_eq!(
            event_path("a/b c", "/replay", Some("/hooks/x")),
            "/events/a%2Fb%20c/replay?route=%2Fhooks%2Fx"
        );
        assert_eq!(event_path("evt_1", "", None), "/events/evt_1");
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![row(["A", "BB", "C"]), row(["long", "x", "last cell"])];
        assert_eq!(table(&rows), "A     BB  C\nlong  x   last cell\n");
    }
}
