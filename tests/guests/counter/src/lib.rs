//! Counts the deliveries its instance has handled in a global and answers
//! `200` with that count: `1` for every delivery when each one gets a fresh
//! instance.

use std::sync::atomic::{AtomicU32, Ordering};

use hookhost_sdk::{Delivery, Response, Result};

static HANDLED: AtomicU32 = AtomicU32::new(0);

struct Counter;

impl hookhost_sdk::Handler for Counter {
    fn handle(_delivery: Delivery) -> Result<Response> {
        let handled = HANDLED.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(Response::ok().with_body(handled.to_string()))
    }
}

hookhost_sdk::export!(Counter);
