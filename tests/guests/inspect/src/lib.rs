//! Answers `200` with a JSON description of exactly the delivery it received:
//!
//! ```json
//! {"id":"…","route":"/hooks/inspect","method":"POST","path":"/hooks/inspect",
//!  "query":"a=1","headers":[["content-type","text/plain"]],"body_hex":"6869",
//!  "body_len":2,"received_at":1700000000000,"attempt":1,"verified_by":null}
//! ```

use std::fmt::Write;

use hookhost_sdk::{Delivery, Response, Result};
use serde::Serialize;

#[derive(Serialize)]
struct Received<'a> {
    id: &'a str,
    route: &'a str,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    /// `[name, value]` pairs, in the order the host passed them.
    headers: Vec<[&'a str; 2]>,
    /// Lower-case hex, so any bytes survive the trip through JSON.
    body_hex: String,
    body_len: usize,
    received_at: u64,
    attempt: u32,
    verified_by: Option<&'a str>,
}

struct Inspect;

impl hookhost_sdk::Handler for Inspect {
    fn handle(delivery: Delivery) -> Result<Response> {
        let mut body_hex = String::with_capacity(delivery.body.len() * 2);
        for byte in &delivery.body {
            write!(body_hex, "{byte:02x}").expect("writing to a String cannot fail");
        }
        Response::json(&Received {
            id: &delivery.id,
            route: &delivery.route,
            method: &delivery.method,
            path: &delivery.path,
            query: &delivery.query,
            headers: delivery
                .headers
                .iter()
                .map(|h| [h.name.as_str(), h.value.as_str()])
                .collect(),
            body_hex,
            body_len: delivery.body.len(),
            received_at: delivery.received_at,
            attempt: delivery.attempt,
            verified_by: delivery.verified_by.as_deref(),
        })
    }
}

hookhost_sdk::export!(Inspect);
