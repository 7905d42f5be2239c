//! Answers `200` with a body of `?mib=N` MiB (default 24) of `x`.

use hookhost_sdk::{Delivery, Response, Result};

struct HugeBody;

impl hookhost_sdk::Handler for HugeBody {
    fn handle(delivery: Delivery) -> Result<Response> {
        let mib: usize = delivery
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("mib="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(24);
        Ok(Response::ok().with_body(vec![b'x'; mib << 20]))
    }
}

hookhost_sdk::export!(HugeBody);
