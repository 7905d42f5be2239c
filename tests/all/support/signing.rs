//! Signing requests the way senders do, with the host's own signing code
//! (the code `hookhost send` uses).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch: the `now` a sender signs with.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `request` with `headers` added (e.g. the signature headers a
/// `Scheme::sign` made).
pub fn with_headers(
    mut request: reqwest::RequestBuilder,
    headers: &http::HeaderMap,
) -> reqwest::RequestBuilder {
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_bytes());
    }
    request
}
