//! Counts the deliveries its instance has handled in a global and answers
//! `200` with that count: `1` for every delivery when each one gets a fresh
//! instance. `?fail=trap` panics, `?fail=retry` and `?fail=reject` return
//! those errors (after counting), to show which outcomes end an instance;
//! `?leak=N` grows memory by N MiB that is never freed.

use std::sync::atomic::{AtomicU32, Ordering};

use hookhost_sdk::{Delivery, Response, Result, reject, retry};

static HANDLED: AtomicU32 = AtomicU32::new(0);

struct Counter;

impl hookhost_sdk::Handler for Counter {
    fn handle(delivery: Delivery) -> Result<Response> {
        let handled = HANDLED.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(mib) = delivery.query.strip_prefix("leak=") {
            let mib: usize = mib.parse().expect("?leak=MIB");
            std::hint::black_box(vec![1u8; mib << 20].leak());
        }
        match delivery.query.strip_prefix("fail=") {
            Some("trap") => panic!("asked to trap after {handled} deliveries"),
            Some("retry") => Err(retry("asked to retry")),
            Some("reject") => Err(reject("asked to reject")),
            _ => Ok(Response::ok().with_body(handled.to_string())),
        }
    }
}

hookhost_sdk::export!(Counter);
