//! Panics with the message `guest-panicker: deliberate panic (delivery <id>)`:
//! a guest bug, which the host sees as a trap.

use hookhost_sdk::{Delivery, Response, Result};

struct Panicker;

impl hookhost_sdk::Handler for Panicker {
    fn handle(delivery: Delivery) -> Result<Response> {
        panic!(
            "guest-panicker: deliberate panic (delivery {})",
            delivery.id
        )
    }
}

hookhost_sdk::export!(Panicker);
