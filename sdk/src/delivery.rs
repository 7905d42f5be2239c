//! Reading a [`Delivery`]: headers by name, the body as text or JSON.

use serde::Deserialize;

use crate::{Delivery, Header, Result, reject};

impl Delivery {
    /// The first value of header `name`, compared case-insensitively;
    /// `None` when the request did not carry it.
    ///
    /// ```
    /// # fn f(delivery: hookhost_sdk::Delivery) {
    /// let event = delivery.header("X-GitHub-Event").unwrap_or("unknown");
    /// # }
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_all(name).next()
    }

    /// Every value of header `name` (compared case-insensitively), in the order
    /// received.
    pub fn headers_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value.as_str())
    }

    /// The body as UTF-8 text; a [`reject`] when it is not valid UTF-8.
    pub fn body_str(&self) -> Result<&str> {
        core::str::from_utf8(&self.body)
            .map_err(|err| reject(format!("request body is not valid UTF-8: {err}")))
    }

    /// The body parsed as JSON into `T`; a [`reject`] saying what is wrong
    /// (syntax, a missing field, a wrong type) when it does not fit.
    ///
    /// `T` may borrow from the body (`&str` fields) or own its data.
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Ping<'a> {
    ///     zen: &'a str,
    /// }
    /// # fn f(delivery: hookhost_sdk::Delivery) -> hookhost_sdk::Result<()> {
    /// let ping: Ping<'_> = delivery.json()?;
    /// # Ok(()) }
    /// ```
    pub fn json<'a, T: Deserialize<'a>>(&'a self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|err| reject(format!("request body is not the expected JSON: {err}")))
    }
}

impl Header {
    /// A header; the name is stored lower-case, as the host does for requests.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        let mut name = name.into();
        name.make_ascii_lowercase();
        Header {
            name,
            value: value.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(headers: &[(&str, &str)], body: &[u8]) -> Delivery {
        Delivery {
            id: "d-1".into(),
            route: "/hooks/test".into(),
            method: "POST".into(),
            path: "/hooks/test".into(),
            query: String::new(),
            headers: headers.iter().map(|(n, v)| Header::new(*n, *v)).collect(),
            body: body.to_vec(),
            received_at: 1_700_000_000_000,
            attempt: 1,
            verified_by: None,
        }
    }

    #[test]
    fn header_lookup_ignores_case_and_returns_first_value() {
        let d = delivery(
            &[("x-github-event", "push"), ("Accept", "a"), ("accept", "b")],
            b"",
        );
        assert_eq!(d.header("X-GitHub-Event"), Some("push"));
        assert_eq!(d.header("ACCEPT"), Some("a"));
        assert_eq!(d.header("missing"), None);
        assert_eq!(d.headers_all("Accept").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(d.headers_all("missing").count(), 0);
    }

    #[test]
    fn body_str_rejects_invalid_utf8() {
        assert_eq!(delivery(&[], b"hi").body_str(), Ok("hi"));
        let err = delivery(&[], b"\xff\xfe").body_str().unwrap_err();
        assert!(err.is_reject());
        assert!(err.message().contains("not valid UTF-8"), "{err}");
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Push<'a> {
        #[serde(rename = "ref")]
        git_ref: &'a str,
        commits: Vec<serde_json::Value>,
    }

    #[test]
    fn json_parses_borrowed_and_owned_types() {
        let d = delivery(&[], br#"{"ref":"refs/heads/main","commits":[{},{}]}"#);
        let push: Push<'_> = d.json().unwrap();
        assert_eq!(push.git_ref, "refs/heads/main");
        assert_eq!(push.commits.len(), 2);
        let value: serde_json::Value = d.json().unwrap();
        assert_eq!(value["ref"], "refs/heads/main");
    }

    #[test]
    fn json_mismatch_is_a_reject_naming_the_problem() {
        let err = delivery(&[], br#"{"commits":[]}"#)
            .json::<Push<'_>>()
            .unwrap_err();
        assert!(err.is_reject());
        assert!(err.message().contains("missing field `ref`"), "{err}");

        let err = delivery(&[], b"not json").json::<Push<'_>>().unwrap_err();
        assert!(err.is_reject());
        assert!(
            err.message()
                .starts_with("request body is not the expected JSON")
        );
    }
}
