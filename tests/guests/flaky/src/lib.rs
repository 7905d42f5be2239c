//! Fails with `retry("attempt N of 3 failed")` while the delivery's attempt
//! number is below 3, then answers `200`. Every call logs
//! `guest-flaky saw attempt N (delivery <id>)`.

use hookhost_sdk::{Delivery, Response, Result, info, retry};

/// The first attempt that succeeds.
const SUCCEEDS_AT: u32 = 3;

struct Flaky;

impl hookhost_sdk::Handler for Flaky {
    fn handle(delivery: Delivery) -> Result<Response> {
        let attempt = delivery.attempt;
        info!(
            "guest-flaky saw attempt {attempt} (delivery {})",
            delivery.id
        );
        if attempt < SUCCEEDS_AT {
            return Err(retry(format!("attempt {attempt} of {SUCCEEDS_AT} failed")));
        }
        Ok(Response::ok())
    }
}

hookhost_sdk::export!(Flaky);
