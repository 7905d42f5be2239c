//! Reads `{"key": K, "n": N}` from the body and POSTs `K N ATTEMPT` to the
//! URL in `?log=URL` (a test's recorder), then fails with `retry` while the
//! attempt number is at most `?retries=R` for the key in `?retry=K`, and
//! answers 200 otherwise. Shows what order a queue route with
//! `[queue] order_key` delivers in, and what a key being retried holds back.

use hookhost_sdk::{Delivery, Response, Result, retry};

struct Keyed;

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

impl hookhost_sdk::Handler for Keyed {
    fn handle(delivery: Delivery) -> Result<Response> {
        let body: serde_json::Value = serde_json::from_slice(&delivery.body)
            .map_err(|err| hookhost_sdk::reject(format!("body is not JSON: {err}")))?;
        let key = body["key"].as_str().unwrap_or("");
        let n = body["n"].as_u64().unwrap_or(0);
        let line = format!("{key} {n} {}", delivery.attempt);
        if let Some(log) = param(&delivery.query, "log") {
            hookhost_sdk::http::request("POST", log)
                .body(line.clone())
                .send()
                .map_err(|err| retry(format!("cannot log `{line}`: {}", err.message())))?;
        }
        let retries: u32 = param(&delivery.query, "retries")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        if param(&delivery.query, "retry") == Some(key) && delivery.attempt <= retries {
            return Err(retry(format!(
                "{key} retried at attempt {}",
                delivery.attempt
            )));
        }
        Ok(Response::text(line))
    }
}

hookhost_sdk::export!(Keyed);
