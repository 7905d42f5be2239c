//! Outbound HTTP: a small blocking client over the standard
//! `wasi:http/outgoing-handler`.
//!
//! The host sends a request only to the hosts the plugin's manifest lists in
//! `[allow] http`; anything else fails with an error for which
//! [`Error::is_denied`] is true, and nothing leaves the host. Each request is
//! bounded by the manifest's `http_timeout` and the delivery's own deadline,
//! and a response body larger than `http_response` fails the read.
//!
//! ```no_run
//! # fn f() -> hookhost_sdk::Result<()> {
//! use hookhost_sdk::http;
//!
//! let url = hookhost_sdk::config::require("chat_url")?;
//! let response = http::post(&url)
//!     .header("content-type", "application/json")
//!     .body(r#"{"text":"deployed"}"#)
//!     .send()?; // a failed request becomes a `retry`
//! if !response.is_success() {
//!     return Err(hookhost_sdk::retry(format!("chat answered {}", response.status)));
//! }
//! # Ok(()) }
//! ```
//!
//! Off WebAssembly (native unit tests) there is no host to send through:
//! [`Request::send`] fails with an error saying so.

use std::fmt;
use std::time::Duration;

/// A request being built; send it with [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

/// A `GET` request to `url` (`http://` or `https://`).
pub fn get(url: &str) -> Request {
    request("GET", url)
}

/// A `POST` request to `url` (`http://` or `https://`).
pub fn post(url: &str) -> Request {
    request("POST", url)
}

/// A request with any `method` (`PUT`, `DELETE`, ...) to `url`.
pub fn request(method: &str, url: &str) -> Request {
    Request {
        method: method.to_ascii_uppercase(),
        url: url.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
        timeout: None,
    }
}

impl Request {
    /// Adds a header (repeatable; `host`, `connection` and other hop-by-hop
    /// headers are set by the host and refused here).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON, with `content-type:
    /// application/json`.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.header("content-type", "application/json").body(body)
    }

    /// A shorter timeout than the manifest's `http_timeout` for connecting,
    /// for the first response byte and between bytes (each). A longer one
    /// is cut to the manifest's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, Error> {
        let url = Url::parse(&self.url)?;
        imp::send(&self, &url)
    }
}

/// A response: status, headers and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Headers as received (names lower-case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name`, compared ignoring ASCII case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; a body that does not parse is a `reject`
    /// when `?`-ed in a handler.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    denied: bool,
    message: String,
}

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Self {
            denied: false,
            message: message.into(),
        }
    }

    /// True when the host refused the request because the plugin's manifest
    /// does not grant that host (`[allow] http`): nothing was sent.
    pub fn is_denied(&self) -> bool {
        self.denied
    }

    /// What went wrong, e.g. `HTTP request denied` or `connection refused`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A request that got no response may get one later: `retry`. A denied one
/// will not: `reject`.
impl From<Error> for crate::HandlerError {
    fn from(err: Error) -> Self {
        let message = format!("outbound HTTP: {err}");
        if err.denied {
            crate::reject(message)
        } else {
            crate::retry(message)
        }
    }
}

/// The parts of a URL that wasi:http wants apart.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    https: bool,
    authority: &'a str,
    path_with_query: &'a str,
}

impl<'a> Url<'a> {
    fn parse(url: &'a str) -> Result<Self, Error> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(Error::new(format!(
                "`{url}` is not an http:// or https:// URL"
            )));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return Err(Error::new(format!("`{url}` has no usable host")));
        }
        // The fragment is the client's business, never sent.
        let tail = tail.split('#').next().unwrap_or_default();
        let path_with_query = if tail.is_empty() { "/" } else { tail };
        Ok(Self {
            https,
            authority,
            path_with_query,
        })
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions,
        Scheme,
    };
    use wasip2::io::streams::StreamError;

    use super::{Error, Request, Response, Url};

    fn error(code: &ErrorCode) -> Error {
        Error {
            denied: matches!(code, ErrorCode::HttpRequestDenied),
            message: describe(code),
        }
    }

    fn describe(code: &ErrorCode) -> String {
        match code {
            ErrorCode::HttpRequestDenied => {
                "HTTP request denied (the host is not in the plugin's `[allow] http`)".into()
            }
            ErrorCode::ConnectionRefused => "connection refused".into(),
            ErrorCode::ConnectionTimeout => "timed out connecting".into(),
            ErrorCode::ConnectionReadTimeout => "timed out waiting for the response".into(),
            ErrorCode::HttpResponseTimeout => "timed out reading the response".into(),
            ErrorCode::HttpResponseBodySize(Some(limit)) => format!(
                "response body is larger than the plugin's limit of {limit} bytes (`limits.http_response`)"
            ),
            ErrorCode::DnsError(_) => "cannot resolve the host name".into(),
            other => format!("{other:?}"),
        }
    }

    fn method(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        }
    }

    pub fn send(request: &Request, url: &Url<'_>) -> Result<Response, Error> {
        let mut entries: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.as_bytes().to_vec()))
            .collect();
        // The whole body is known: say its length, rather than let the
        // request go out chunked (which some webhook receivers refuse).
        if !request.body.is_empty() && !entries.iter().any(|(name, _)| name == "content-length") {
            entries.push((
                "content-length".into(),
                request.body.len().to_string().into_bytes(),
            ));
        }
        let headers = Fields::from_list(&entries)
            .map_err(|err| Error::new(format!("invalid request header: {err:?}")))?;
        let outgoing = OutgoingRequest::new(headers);
        let invalid = |what: &str| Error::new(format!("invalid request {what}"));
        outgoing
            .set_method(&method(&request.method))
            .map_err(|()| invalid("method"))?;
        let scheme = if url.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        outgoing
            .set_authority(Some(url.authority))
            .map_err(|()| invalid("host"))?;
        outgoing
            .set_path_with_query(Some(url.path_with_query))
            .map_err(|()| invalid("path"))?;
        let body = outgoing.body().map_err(|()| invalid("body"))?;

        let options = request.timeout.map(|timeout| {
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            let options = RequestOptions::new();
            // Refused only by hosts that do not support a timeout; the
            // manifest's then applies.
            let _ = options.set_connect_timeout(Some(nanos));
            let _ = options.set_first_byte_timeout(Some(nanos));
            let _ = options.set_between_bytes_timeout(Some(nanos));
            options
        });
        let pending = outgoing_handler::handle(outgoing, options).map_err(|code| error(&code))?;

        // The body is written after `handle`: the host sends it as it
        // arrives, so a body larger than its buffer cannot stall. A failed
        // write is reported only if the response has no better reason (a
        // denied request closes the body before anything is written).
        let mut write_failed = None;
        {
            let stream = body.write().map_err(|()| invalid("body"))?;
            for chunk in request.body.chunks(4096) {
                if let Err(err) = stream.blocking_write_and_flush(chunk) {
                    write_failed = Some(stream_error(err, "sending the body"));
                    break;
                }
            }
        }
        let finished = OutgoingBody::finish(body, None);

        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(error(&code)),
            Some(Err(())) | None => return Err(Error::new("the response was already taken")),
        };
        if let Some(err) = write_failed {
            return Err(err);
        }
        finished.map_err(|code| error(&code))?;
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| Error::new("the response body was already taken"))?;
        let mut bytes = Vec::new();
        {
            let stream = incoming
                .stream()
                .map_err(|()| Error::new("the response body was already taken"))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => bytes.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(err) => return Err(stream_error(err, "reading the response")),
                }
            }
        }
        drop(IncomingBody::finish(incoming));
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }

    fn stream_error(err: StreamError, doing: &str) -> Error {
        match err {
            StreamError::Closed => Error::new(format!("connection closed while {doing}")),
            StreamError::LastOperationFailed(io) => {
                match wasip2::http::types::http_error_code(&io) {
                    Some(code) => error(&code),
                    // e.g. "HTTP response body size exceeds limit: 1024 bytes"
                    // (the manifest's `limits.http_response`).
                    None => Error::new(format!("{doing} failed: {}", io.to_debug_string())),
                }
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{Error, Request, Response, Url};

    pub fn send(request: &Request, _url: &Url<'_>) -> Result<Response, Error> {
        Err(Error::new(format!(
            "cannot send {} {}: outbound HTTP goes through the hookhost runtime, which a native build does not have",
            request.method, request.url
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        assert_eq!(
            Url::parse("https://hooks.slack.com/services/T0?x=1#frag").unwrap(),
            Url {
                https: true,
                authority: "hooks.slack.com",
                path_with_query: "/services/T0?x=1"
            }
        );
        assert_eq!(
            Url::parse("http://127.0.0.1:9000").unwrap(),
            Url {
                https: false,
                authority: "127.0.0.1:9000",
                path_with_query: "/"
            }
        );
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://user@host/").is_err());
        assert!(Url::parse("http:///path").is_err());
    }

    #[test]
    fn natively_a_request_fails_and_becomes_a_retry() {
        let err = post("http://127.0.0.1:1/").body("x").send().unwrap_err();
        assert!(!err.is_denied());
        let err: crate::HandlerError = err.into();
        assert!(err.is_retry(), "{err:?}");
    }
}
