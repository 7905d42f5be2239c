//! Fails every delivery with `retry("downstream unavailable")`.
//!
//! With `x-retry-after-ms: N` it hints the host to try again in N ms
//! (`queue.retry-after`); with `x-answer: ok` as well it then answers 200
//! instead, so a test can check that a hint never outlives its call.

use std::time::Duration;

use hookhost_sdk::{Delivery, Response, Result, retry, retry_after};

struct Retry;

impl hookhost_sdk::Handler for Retry {
    fn handle(delivery: Delivery) -> Result<Response> {
        let hint = delivery
            .header("x-retry-after-ms")
            .and_then(|ms| ms.parse::<u64>().ok());
        let err = match hint {
            Some(ms) => retry_after("downstream unavailable", Duration::from_millis(ms)),
            None => retry("downstream unavailable"),
        };
        if delivery.header("x-answer") == Some("ok") {
            return Ok(Response::text("ok"));
        }
        Err(err)
    }
}

hookhost_sdk::export!(Retry);
