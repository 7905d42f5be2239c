//! Grows host memory through wasi:http `fields` resources, which live in the
//! host's resource table outside the guest's linear memory: makes `?n=N`
//! `fields` (default 4000), each filled with about 60 KiB of headers, and
//! keeps every one. Answers `200` with how many it made, or fails where the
//! host stops it (a trap, or an error it reports: `stopped at K: …`).

use hookhost_sdk::{Delivery, Response, Result};
use wasip2::http::types::Fields;

/// One header value: 4 KiB, 15 of them per `fields`.
const VALUE: [u8; 4096] = [b'a'; 4096];
const PER_FIELDS: usize = 15;

fn query(delivery: &Delivery, key: &str, default: usize) -> usize {
    delivery
        .query
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

struct FieldsBomb;

impl hookhost_sdk::Handler for FieldsBomb {
    fn handle(delivery: Delivery) -> Result<Response> {
        let n = query(&delivery, "n", 4000);
        let mut kept = Vec::with_capacity(n);
        for made in 0..n {
            let fields = Fields::new();
            for header in 0..PER_FIELDS {
                if let Err(err) = fields.append(&format!("x-bomb-{header}"), &VALUE) {
                    return Ok(Response::text(format!("stopped at {made}: {err:?}")));
                }
            }
            kept.push(fields);
        }
        Ok(Response::text(format!("made {}", kept.len())))
    }
}

hookhost_sdk::export!(FieldsBomb);
