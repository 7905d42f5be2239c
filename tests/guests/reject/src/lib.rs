//! Fails every delivery with `reject("unsupported event")`.

use hookhost_sdk::{Delivery, Response, Result, reject};

struct Reject;

impl hookhost_sdk::Handler for Reject {
    fn handle(_delivery: Delivery) -> Result<Response> {
        Err(reject("unsupported event"))
    }
}

hookhost_sdk::export!(Reject);
