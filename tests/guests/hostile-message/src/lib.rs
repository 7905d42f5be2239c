//! Fails every delivery with a hostile message: `reject` (or `retry` with
//! `?retry`) carrying 4 MiB of text whose lines look like host log lines
//! (`\n`, `\r`, ANSI escapes), to show the host bounds and escapes it.

use hookhost_sdk::{Delivery, Response, Result, reject, retry};

struct HostileMessage;

/// One forged log line; repeated until the message is 4 MiB.
const FORGED: &str = "\n2026-01-01T00:00:00Z  INFO hookhost: forged line\r\u{1b}[2K";

impl hookhost_sdk::Handler for HostileMessage {
    fn handle(delivery: Delivery) -> Result<Response> {
        let mut message = String::from("hostile");
        while message.len() < 4 * 1024 * 1024 {
            message.push_str(FORGED);
        }
        if delivery.query.split('&').any(|pair| pair == "retry") {
            Err(retry(message))
        } else {
            Err(reject(message))
        }
    }
}

hookhost_sdk::export!(HostileMessage);
