//! Sends one outbound HTTP request with `hookhost_sdk::http` and answers
//! `200` with what happened, as JSON:
//!
//! - the URL is the request body (trimmed); the method is `?method=M`
//!   (default `POST`, with the body `hello from fetch`);
//! - on a response: `{"status": 200, "body": "<text>", "body_len": N}`;
//! - on a failure: `{"error": "<message>", "denied": bool}`.

use hookhost_sdk::{Delivery, Response, Result};
use serde_json::json;

struct Fetch;

impl hookhost_sdk::Handler for Fetch {
    fn handle(delivery: Delivery) -> Result<Response> {
        let url = delivery.body_str()?.trim().to_owned();
        let method = delivery
            .query
            .strip_prefix("method=")
            .unwrap_or("POST")
            .to_owned();
        let mut request =
            hookhost_sdk::http::request(&method, &url).header("x-hookhost-test", "fetch");
        if method == "POST" {
            request = request.body("hello from fetch");
        }
        let outcome = match request.send() {
            Ok(response) => json!({
                "status": response.status,
                "body_len": response.body.len(),
                "body": response.text(),
            }),
            Err(err) => json!({"error": err.message(), "denied": err.is_denied()}),
        };
        Response::json(&outcome)
    }
}

hookhost_sdk::export!(Fetch);
