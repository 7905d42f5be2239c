//! Never returns: spins until the host's deadline interrupts it.

use hookhost_sdk::{Delivery, Response, Result};

struct Looper;

impl hookhost_sdk::Handler for Looper {
    fn handle(_delivery: Delivery) -> Result<Response> {
        let mut spins = 0u64;
        loop {
            // `black_box` keeps the optimiser from proving the loop useless.
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

hookhost_sdk::export!(Looper);
