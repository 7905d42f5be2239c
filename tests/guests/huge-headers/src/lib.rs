//! Answers `200` with `?n=N` response headers (default 20000), `x-h-I`
//! each with a 1 KiB value: about 20 MiB of headers.

use hookhost_sdk::{Delivery, Response, Result};

struct HugeHeaders;

impl hookhost_sdk::Handler for HugeHeaders {
    fn handle(delivery: Delivery) -> Result<Response> {
        let n: usize = delivery
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("n="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(20_000);
        let value = "v".repeat(1024);
        let mut response = Response::ok();
        for i in 0..n {
            response = response.with_header(format!("x-h-{i}"), value.clone());
        }
        Ok(response)
    }
}

hookhost_sdk::export!(HugeHeaders);
