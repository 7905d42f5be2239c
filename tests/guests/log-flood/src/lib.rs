//! Floods the host log: `?n=N` calls of the `log` import (`line 1` ..
//! `line N`, default 5000) and `?out=N` lines on stdout (`out 1` ..
//! `out N`, default 0), then answers `200` with `logged N`.

use hookhost_sdk::{Delivery, Level, Response, Result};

fn query(delivery: &Delivery, key: &str, default: usize) -> usize {
    delivery
        .query
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

struct LogFlood;

impl hookhost_sdk::Handler for LogFlood {
    fn handle(delivery: Delivery) -> Result<Response> {
        let n = query(&delivery, "n", 5000);
        let out = query(&delivery, "out", 0);
        for i in 1..=n {
            hookhost_sdk::log(Level::Info, &format!("line {i}"));
        }
        for i in 1..=out {
            println!("out {i}");
        }
        Ok(Response::text(format!("logged {n}")))
    }
}

hookhost_sdk::export!(LogFlood);
