//! `hookhost send`: deliver a webhook signed exactly as its sender would sign
//! it, so users can simulate GitHub, Stripe, Slack, ... against their host.
//!
//! Owns building the signed request and printing the answer. Signing is the
//! verification module's own code ([`crate::verify::Scheme::sign`]), so what
//! `send` produces is by construction what `serve` accepts.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::secret::SecretResolver;
use crate::verify::{self, RawVerify};

/// What to send.
#[derive(Debug)]
pub struct SendRequest {
    /// Target URL (`http://`).
    pub url: Uri,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// Extra headers, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// How to sign; `None` sends unsigned.
    pub verify: Option<RawVerify>,
    /// Signing time (Unix seconds); `None` means now. Lets users test stale
    /// timestamps.
    pub timestamp: Option<i64>,
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    /// The response status.
    pub status: http::StatusCode,
    /// The response headers.
    pub headers: http::HeaderMap,
    /// The response body.
    pub body: Bytes,
}

/// Signs and sends `request`, returning the answer whatever its status.
pub async fn send(request: SendRequest) -> anyhow::Result<Answer> {
    if request.url.scheme_str() != Some("http") {
        anyhow::bail!(
            "`{}`: only http:// URLs can be sent to (put a TLS-terminating proxy in front, or send to the plain listener)",
            request.url
        );
    }
    let now = match request.timestamp {
        Some(timestamp) => timestamp,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_secs() as i64,
    };

    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(request.url.clone());
    let headers = builder.headers_mut().expect("a fresh builder has headers");
    for (name, value) in request.headers {
        headers.append(name, value);
    }
    if let Some(raw) = &request.verify {
        // Twilio signs the public URL; a host rebuilding it from the request
        // defaults the protocol to https unless told otherwise.
        if raw.scheme == "twilio" && !headers.contains_key("x-forwarded-proto") {
            headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        }
        let cwd = std::env::current_dir().context("cannot read the current folder")?;
        let scheme = verify::build(raw, &SecretResolver::new(&cwd))
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        let signature = scheme
            .sign(&request.body, &request.url, now)
            .map_err(|err| anyhow::anyhow!("cannot sign with `{}`: {err}", raw.scheme))?;
        for (name, value) in &signature {
            headers.insert(name.clone(), value.clone());
        }
    }
    if !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let request = builder
        .body(Full::new(Bytes::from(request.body)))
        .context("cannot build the request")?;

    let client = Client::builder(TokioExecutor::new()).build_http();
    let uri = request.uri().clone();
    let response = client
        .request(request)
        .await
        .with_context(|| format!("cannot reach {uri}"))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .with_context(|| format!("{uri} closed the connection mid-answer"))?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Parses a `-H 'Name: value'` argument.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("header `{text}` must look like `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("`{}` is not a valid header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
    Ok((name, value))
}
