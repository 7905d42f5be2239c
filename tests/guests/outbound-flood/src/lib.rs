//! Starts `?n=N` outbound requests (default 64) to the URL in the body all at
//! once through the raw `wasi:http/outgoing-handler`, before waiting for any,
//! then waits for each. Answers `200` with
//! `{"ok": K, "limited": L, "other": ["<error>", …]}`: `limited` counts
//! `connection-limit-reached`.

use hookhost_sdk::{Delivery, Response, Result};
use wasip2::http::outgoing_handler::{self, FutureIncomingResponse};
use wasip2::http::types::{ErrorCode, Fields, OutgoingRequest, Scheme};

struct OutboundFlood;

fn start(authority: &str, path: &str) -> std::result::Result<FutureIncomingResponse, ErrorCode> {
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&Scheme::Http)).unwrap();
    request.set_authority(Some(authority)).unwrap();
    request.set_path_with_query(Some(path)).unwrap();
    outgoing_handler::handle(request, None)
}

impl hookhost_sdk::Handler for OutboundFlood {
    fn handle(delivery: Delivery) -> Result<Response> {
        let n: usize = delivery
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("n="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(64);
        let url = delivery.body_str()?.trim().to_owned();
        let rest = url.strip_prefix("http://").unwrap_or(&url);
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let mut pending = Vec::new();
        let mut other = Vec::new();
        let mut limited = 0;
        for _ in 0..n {
            match start(authority, path) {
                Ok(future) => pending.push(future),
                Err(ErrorCode::ConnectionLimitReached) => limited += 1,
                Err(err) => other.push(format!("{err:?}")),
            }
        }
        let mut ok = 0;
        for future in pending {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(_response))) => ok += 1,
                Some(Ok(Err(ErrorCode::ConnectionLimitReached))) => limited += 1,
                Some(Ok(Err(err))) => other.push(format!("{err:?}")),
                other_outcome => other.push(format!("{other_outcome:?}")),
            }
        }
        Response::json(&serde_json::json!({ "ok": ok, "limited": limited, "other": other }))
    }
}

hookhost_sdk::export!(OutboundFlood);
