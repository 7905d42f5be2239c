//! Runs the key-value operation named in the query on the key in the query,
//! and answers `200` with its outcome as JSON, so tests can drive the `kv`
//! import through the real host:
//!
//! | query | does | answers |
//! |---|---|---|
//! | `op=get&key=K` | `kv::get` | `{"value": "<text>"}` or `{"value": null}` |
//! | `op=set&key=K` | `kv::set` with the request body | `{"ok": true}` |
//! | `op=delete&key=K` | `kv::delete` | `{"deleted": bool}` |
//! | `op=list&key=P` | `kv::list_keys` with prefix `P` | `{"keys": [...]}` |
//! | `op=incr&key=K&by=N` | `kv::increment` (N default 1) | `{"value": sum}` |
//!
//! A failed call answers `200 {"error": "<kind>", "message": "<host's text>"}`
//! (kind `invalid-key`, `quota-exceeded`, `not-a-number` or `store`), so the
//! host's message reaches the test unchanged. Values go in and out as UTF-8
//! text (invalid bytes replaced).

use hookhost_sdk::kv::{self, Error};
use hookhost_sdk::{Delivery, Response, Result, reject};
use serde_json::{Value, json};

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn outcome(result: std::result::Result<Value, Error>) -> Value {
    match result {
        Ok(value) => value,
        Err(err) => {
            let kind = match err {
                Error::InvalidKey(_) => "invalid-key",
                Error::QuotaExceeded(_) => "quota-exceeded",
                Error::NotANumber(_) => "not-a-number",
                Error::Store(_) => "store",
            };
            json!({"error": kind, "message": err.message()})
        }
    }
}

struct Kv;

impl hookhost_sdk::Handler for Kv {
    fn handle(delivery: Delivery) -> Result<Response> {
        let query = delivery.query.as_str();
        let op = param(query, "op").ok_or_else(|| reject("missing `op`"))?;
        let key = param(query, "key").unwrap_or_default();
        let result = match op {
            "get" => kv::get(key).map(|value| {
                json!({"value": value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned())})
            }),
            "set" => kv::set(key, &delivery.body).map(|()| json!({"ok": true})),
            "delete" => kv::delete(key).map(|deleted| json!({"deleted": deleted})),
            "list" => kv::list_keys(key).map(|keys| json!({"keys": keys})),
            "incr" => {
                let by = param(query, "by").and_then(|by| by.parse().ok()).unwrap_or(1);
                kv::increment(key, by).map(|sum| json!({"value": sum}))
            }
            other => return Err(reject(format!("unknown op `{other}`"))),
        };
        Response::json(&outcome(result))
    }
}

hookhost_sdk::export!(Kv);
