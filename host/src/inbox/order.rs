//! Order keys: `[queue] order_key` in a manifest says which part of a
//! request names the object an event is about (`"json:/repository/full_name"`,
//! `"header:X-Shopify-Shop-Domain"`); events of a route with the same key are
//! delivered one at a time, in acceptance order.
//!
//! Owns parsing the setting and reading a key from a request, once, at
//! append: the key is stored with the event, so a later manifest change does
//! not reorder events already queued. Does not own the ordering itself (the
//! store claims only the oldest pending event of each key, see
//! [`super::store`]).
//!
//! A request whose key cannot be read (no such header, a body that is not
//! JSON, no value at the pointer, or a value that is an object, array,
//! boolean or null) goes to the default lane, [`DEFAULT_LANE`]: the key
//! `""`, ordered like any other. It is never dropped.

use super::store::StoredRequest;

/// The key of events whose own key cannot be read.
pub const DEFAULT_LANE: &str = "";

/// Longest key kept; longer ones are cut (on a character boundary), so a
/// hostile body cannot make every row huge.
const MAX_KEY_LEN: usize = 256;

/// Where a route's order key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderKey {
    /// A JSON pointer (RFC 6901) into the body; strings and numbers are keys.
    Json(String),
    /// A header's value, by name (any case).
    Header(String),
}

impl OrderKey {
    /// Parses `json:/pointer` or `header:Name`; the error says how to fix it
    /// (the caller adds the file and the field).
    pub fn parse(text: &str) -> Result<Self, String> {
        let fix = "write \"json:/pointer/into/the/body\" (e.g. \"json:/repository/full_name\") \
                   or \"header:Name\" (e.g. \"header:X-Shopify-Shop-Domain\")";
        if let Some(pointer) = text.strip_prefix("json:") {
            if !pointer.starts_with('/') {
                return Err(format!("\"{text}\": a JSON pointer starts with `/`; {fix}"));
            }
            return Ok(OrderKey::Json(pointer.to_owned()));
        }
        if let Some(name) = text.strip_prefix("header:") {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("\"{text}\": `{name}` is not a header name; {fix}"));
            }
            return Ok(OrderKey::Header(name.to_ascii_lowercase()));
        }
        Err(format!("\"{text}\" is not an order key; {fix}"))
    }

    /// The key of `request`, or [`DEFAULT_LANE`] when it cannot be read.
    pub fn read(&self, request: &StoredRequest) -> String {
        let key = match self {
            OrderKey::Header(name) => request
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone()),
            OrderKey::Json(pointer) => serde_json::from_slice::<serde_json::Value>(&request.body)
                .ok()
                .and_then(|body| match body.pointer(pointer) {
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                }),
        };
        let mut key = key.unwrap_or_else(|| DEFAULT_LANE.to_owned());
        if key.len() > MAX_KEY_LEN {
            let mut end = MAX_KEY_LEN;
            while !key.is_char_boundary(end) {
                end -= 1;
            }
            key.truncate(end);
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], body: &str) -> StoredRequest {
        StoredRequest {
            method: "POST".into(),
            path: "/hooks/a".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
            verified_by: None,
        }
    }

    #[test]
    fn keys_are_read_from_a_json_pointer_or_a_header() {
        let json = OrderKey::parse("json:/repository/full_name").unwrap();
        let body = r#"{"repository":{"full_name":"a/b","id":7}}"#;
        assert_eq!(json.read(&request(&[], body)), "a/b");
        let id = OrderKey::parse("json:/repository/id").unwrap();
        assert_eq!(id.read(&request(&[], body)), "7");
        let header = OrderKey::parse("header:X-Shopify-Shop-Domain").unwrap();
        let shop = request(&[("x-shopify-shop-domain", "s.example")], "");
        assert_eq!(header.read(&shop), "s.example");
    }

    #[test]
    fn unreadable_keys_go_to_the_default_lane() {
        let json = OrderKey::parse("json:/repository/full_name").unwrap();
        for body in [
            "not json",
            "{}",
            r#"{"repository":{"full_name":{}}}"#,
            "null",
        ] {
            assert_eq!(json.read(&request(&[], body)), DEFAULT_LANE, "{body}");
        }
        let header = OrderKey::parse("header:X-Key").unwrap();
        assert_eq!(header.read(&request(&[], "{}")), DEFAULT_LANE);
        let long = format!(r#"{{"k":"{}"}}"#, "é".repeat(300));
        let cut = OrderKey::parse("json:/k")
            .unwrap()
            .read(&request(&[], &long));
        assert!(cut.len() <= MAX_KEY_LEN, "{}", cut.len());
    }

    #[test]
    fn bad_specs_say_how_to_write_one() {
        for bad in [
            "repository",
            "json:repository",
            "header:bad name",
            "body:/x",
        ] {
            let err = OrderKey::parse(bad).unwrap_err();
            assert!(err.contains("json:/") && err.contains("header:"), "{err}");
        }
    }
}
