//! Allocates and fills memory in 1 MiB steps, keeping all of it, until the
//! host's memory cap makes an allocation fail (the guest then aborts: a trap).

use hookhost_sdk::{Delivery, Response, Result};

const STEP: usize = 1 << 20;

struct MemoryHog;

impl hookhost_sdk::Handler for MemoryHog {
    fn handle(_delivery: Delivery) -> Result<Response> {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        loop {
            // Filling with a non-zero byte writes every page, so the memory is
            // really committed rather than reserved (`vec![0; n]` could skip it).
            let mut block = Vec::with_capacity(STEP);
            block.resize(STEP, 0xA5);
            kept.push(std::hint::black_box(block));
        }
    }
}

hookhost_sdk::export!(MemoryHog);
