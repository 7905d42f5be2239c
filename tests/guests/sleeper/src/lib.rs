//! Sleeps for `?ms=N` milliseconds (WASI monotonic clock, not a busy loop),
//! then answers `200` with `slept N ms`. Stands in for a handler waiting on a
//! slow downstream, e.g. to prove shutdown lets in-flight deliveries finish.

use std::time::Duration;

use hookhost_sdk::{Delivery, Response, Result};

struct Sleeper;

impl hookhost_sdk::Handler for Sleeper {
    fn handle(delivery: Delivery) -> Result<Response> {
        let ms: u64 = delivery
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("ms="))
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        std::thread::sleep(Duration::from_millis(ms));
        Ok(Response::text(format!("slept {ms} ms")))
    }
}

hookhost_sdk::export!(Sleeper);
