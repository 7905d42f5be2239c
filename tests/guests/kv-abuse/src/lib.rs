//! Writes `?n=N` (default 1000) distinct keys, each with a 16 KiB value,
//! to its key-value namespace, stopping at the first error. Answers `200`
//! with `{"written": K, "error": "<kind>: <message>"}` (error null if none).

use hookhost_sdk::{Delivery, Response, Result};

struct KvAbuse;

impl hookhost_sdk::Handler for KvAbuse {
    fn handle(delivery: Delivery) -> Result<Response> {
        let n: usize = delivery
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("n="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000);
        let value = vec![0x5a; 16 * 1024];
        let mut written = 0;
        let mut error = None;
        for i in 0..n {
            match hookhost_sdk::kv::set(&format!("{}/{i}", delivery.id), &value) {
                Ok(()) => written += 1,
                Err(err) => {
                    error = Some(format!("{err:?}: {}", err.message()));
                    break;
                }
            }
        }
        Response::json(&serde_json::json!({ "written": written, "error": error }))
    }
}

hookhost_sdk::export!(KvAbuse);
