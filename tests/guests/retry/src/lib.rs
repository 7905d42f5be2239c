//! Fails every delivery with `retry("downstream unavailable")`.

use hookhost_sdk::{Delivery, Response, Result, retry};

struct Retry;

impl hookhost_sdk::Handler for Retry {
    fn handle(_delivery: Delivery) -> Result<Response> {
        Err(retry("downstream unavailable"))
    }
}

hookhost_sdk::export!(Retry);
