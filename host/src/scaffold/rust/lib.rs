//! {{name}}: a hookhost webhook handler plugin.
//!
//! The host calls `handle` once per delivery, in a fresh instance. Answer
//! with a `Response`, or fail with `hookhost_sdk::retry("…")` (try again
//! later) or `hookhost_sdk::reject("…")` (never).

use hookhost_sdk::{Delivery, Response, Result};
use serde::Deserialize;

/// The JSON this starter understands: `{"name": "you"}` (everything optional).
#[derive(Deserialize, Default)]
struct Greeting {
    name: Option<String>,
}

struct Plugin;

impl hookhost_sdk::Handler for Plugin {
    fn handle(delivery: Delivery) -> Result<Response> {
        // A body that is not this JSON becomes a `reject` (422).
        let greeting: Greeting = if delivery.body.is_empty() {
            Greeting::default()
        } else {
            delivery.json()?
        };
        let name = greeting.name.unwrap_or_else(|| "world".to_owned());
        hookhost_sdk::info!("hello, {name} (delivery {})", delivery.id);
        Response::json(&serde_json::json!({
            "plugin": "{{name}}",
            "hello": name,
            "delivery": delivery.id,
        }))
    }
}

hookhost_sdk::export!(Plugin);
