//! A fleet's witness: every delivery adds 1 to the key `deliveries` in the
//! plugin's key-value namespace (`kv::increment`, which must stay atomic
//! when many hosts share the store), then POSTs `ID ATTEMPT N` (the
//! delivery id, its attempt number and the counter value the increment
//! returned) to the URL in `?log=URL`, then sleeps `&ms=N` milliseconds
//! (default 0: a host killed meanwhile has logged the delivery but not
//! recorded it, so another host delivers it again), and answers 200. A
//! failed increment or log is a `retry`.

use hookhost_sdk::{Delivery, Response, Result, kv, retry};

struct Fleet;

impl hookhost_sdk::Handler for Fleet {
    fn handle(delivery: Delivery) -> Result<Response> {
        let n = kv::increment("deliveries", 1)
            .map_err(|err| retry(format!("cannot count: {}", err.message())))?;
        let line = format!("{} {} {n}", delivery.id, delivery.attempt);
        let param = |name: &str| {
            delivery
                .query
                .split('&')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        };
        let log = param("log");
        if let Some(log) = log {
            hookhost_sdk::http::request("POST", log)
                .body(line.clone())
                .send()
                .map_err(|err| retry(format!("cannot log `{line}`: {}", err.message())))?;
        }
        let ms = param("ms").and_then(|ms| ms.parse().ok()).unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_millis(ms));
        Ok(Response::ok().with_body(line))
    }
}

hookhost_sdk::export!(Fleet);
