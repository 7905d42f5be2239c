//! Answers every webhook with `200 OK`, the exact bytes it received and the
//! request's `content-type`: the smallest useful hookhost plugin.

use hookhost_sdk::{Delivery, Response, Result};

struct Echo;

impl hookhost_sdk::Handler for Echo {
    fn handle(delivery: Delivery) -> Result<Response> {
        let content_type = delivery
            .header("content-type")
            .unwrap_or("application/octet-stream");
        let response = Response::ok().with_header("content-type", content_type);
        Ok(response.with_body(delivery.body))
    }
}

hookhost_sdk::export!(Echo);
