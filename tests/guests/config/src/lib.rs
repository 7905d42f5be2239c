//! Answers `200` with the plugin's whole `[config]` table as a JSON object
//! (`config::get_all`), plus `"requested"`: the value of the key named by
//! `?key=K` read through `config::get` (null when unset).

use hookhost_sdk::{Delivery, Response, Result};
use serde_json::{Map, Value};

struct Config;

impl hookhost_sdk::Handler for Config {
    fn handle(delivery: Delivery) -> Result<Response> {
        let all: Map<String, Value> = hookhost_sdk::config::get_all()
            .into_iter()
            .map(|(key, value)| (key, Value::String(value)))
            .collect();
        let requested = delivery
            .query
            .strip_prefix("key=")
            .and_then(hookhost_sdk::config::get);
        Response::json(&serde_json::json!({"all": all, "requested": requested}))
    }
}

hookhost_sdk::export!(Config);
