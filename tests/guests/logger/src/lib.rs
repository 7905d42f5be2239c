//! Logs one line at every level, `guest-logger <level> (delivery <id>)`,
//! prints `guest-logger stdout (delivery <id>)` to stdout and
//! `guest-logger stderr (delivery <id>)` to stderr, then answers `200`.

use hookhost_sdk::{Delivery, Response, Result, debug, error, info, trace, warn};

struct Logger;

impl hookhost_sdk::Handler for Logger {
    fn handle(delivery: Delivery) -> Result<Response> {
        let id = &delivery.id;
        trace!("guest-logger trace (delivery {id})");
        debug!("guest-logger debug (delivery {id})");
        info!("guest-logger info (delivery {id})");
        warn!("guest-logger warn (delivery {id})");
        error!("guest-logger error (delivery {id})");
        println!("guest-logger stdout (delivery {id})");
        eprintln!("guest-logger stderr (delivery {id})");
        Ok(Response::ok())
    }
}

hookhost_sdk::export!(Logger);
