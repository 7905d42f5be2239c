//! Building a [`Response`].

use serde::Serialize;

use crate::{Header, Response, Result, reject};

impl Response {
    /// A response with this status and no headers or body; add them with
    /// [`with_header`](Self::with_header) and [`with_body`](Self::with_body).
    ///
    /// The host answers 500 for a status outside 100–599.
    pub fn status(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `200 OK`, empty.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// A response with no body, e.g. `Response::empty(204)`.
    pub fn empty(status: u16) -> Self {
        Self::status(status)
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body.
    pub fn text(text: impl Into<String>) -> Self {
        Self::ok()
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(text.into())
    }

    /// `200 OK` with `value` serialized as the `application/json` body.
    ///
    /// Fails (a [`reject`]) only if `value`'s `Serialize` impl does, e.g. a map
    /// with non-string keys.
    ///
    /// ```
    /// # fn f() -> hookhost_sdk::Result<hookhost_sdk::Response> {
    /// hookhost_sdk::Response::json(&serde_json::json!({ "pong": true }))
    /// # }
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        let body = serde_json::to_vec(value)
            .map_err(|err| reject(format!("cannot serialize the response as JSON: {err}")))?;
        Ok(Self::ok()
            .with_header("content-type", "application/json")
            .with_body(body))
    }

    /// Replaces the status, e.g. `Response::json(&created)?.with_status(201)`.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header (the name is stored lower-case). Adding the same name twice
    /// sends it twice.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(Header::new(name, value));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of header `name`, compared case-insensitively (handy in
    /// tests).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn builders_set_status_headers_and_body() {
        let r = Response::ok();
        assert_eq!((r.status, r.headers.len(), r.body.len()), (200, 0, 0));
        assert_eq!(Response::empty(204).status, 204);
        assert_eq!(Response::status(404).status, 404);

        let r = Response::status(201)
            .with_header("Content-Type", "text/csv")
            .with_header("x-a", "1")
            .with_header("x-a", "2")
            .with_body("a,b");
        assert_eq!(r.status, 201);
        assert_eq!(r.header("content-type"), Some("text/csv"));
        assert_eq!(r.headers[0].name, "content-type", "names are lower-cased");
        assert_eq!(r.headers.len(), 3, "with_header appends");
        assert_eq!(r.body, b"a,b");
    }

    #[test]
    fn text_and_json_set_content_type() {
        let r = Response::text("hello");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.body, b"hello");

        let r = Response::json(&serde_json::json!({"pong": true}))
            .unwrap()
            .with_status(202);
        assert_eq!(r.status, 202);
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.body, br#"{"pong":true}"#);
    }

    #[test]
    fn json_serialization_failure_is_a_reject() {
        let map = BTreeMap::from([((1, 2), "tuple keys are not JSON")]);
        let err = Response::json(&map).unwrap_err();
        assert!(err.is_reject());
        assert!(err.message().contains("cannot serialize"), "{err}");
    }
}
