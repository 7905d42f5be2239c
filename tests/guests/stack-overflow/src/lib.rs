//! Recurses without end, each frame holding a buffer, until the WebAssembly
//! stack overflows (a trap).

use hookhost_sdk::{Delivery, Response, Result};

#[inline(never)]
fn dive(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let frame = std::hint::black_box([depth as u8; 256]);
    dive(depth + 1).wrapping_add(u64::from(frame[0]))
}

struct StackOverflow;

impl hookhost_sdk::Handler for StackOverflow {
    fn handle(_delivery: Delivery) -> Result<Response> {
        Ok(Response::text(format!("{}", dive(0))))
    }
}

hookhost_sdk::export!(StackOverflow);
