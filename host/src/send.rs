//! `hookhost send`: deliver a webhook signed exactly as its sender would sign
//! it, so users can simulate GitHub, Stripe, Slack, Discord, ... against
//! their host, handshakes included.
//!
//! Owns building the signed request and printing the answer. Signing is the
//! verification module's own code ([`crate::verify::Scheme::sign_request`]:
//! shared secrets, private keys for key-pair schemes, and each scheme's
//! handshakes), so what `send` produces is by construction what `serve`
//! accepts.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::secret::SecretResolver;
use crate::verify::{self, Outgoing, PrivateKey, RawVerify};

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
    /// The private key of a key-pair scheme (Discord, SendGrid, ...).
    pub key: Option<PrivateKey>,
    /// Send this handshake of the scheme (e.g. `discord-ping`) instead of
    /// `body`.
    pub handshake: Option<String>,
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

    let mut extra = http::HeaderMap::new();
    for (name, value) in request.headers {
        extra.append(name, value);
    }
    let (method, uri, mut headers, body) = match &request.verify {
        Some(raw) => {
            // Twilio signs the public URL; a host rebuilding it from the
            // request defaults the protocol to https unless told otherwise.
            if raw.scheme == "twilio" && !extra.contains_key("x-forwarded-proto") {
                extra.insert("x-forwarded-proto", HeaderValue::from_static("http"));
            }
            let cwd = std::env::current_dir().context("cannot read the current folder")?;
            let scheme = verify::build(raw, &SecretResolver::new(&cwd))
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            let mut out = Outgoing::new(&request.body, &request.url, now);
            if let Some(key) = &request.key {
                out = out.with_key(key);
            }
            if let Some(kind) = &request.handshake {
                out = out.with_handshake(kind);
            }
            let signed = scheme
                .sign_request(&out)
                .map_err(|err| anyhow::anyhow!("cannot sign with `{}`: {err}", raw.scheme))?;
            // The user's headers first; the signature's win over them.
            for (name, value) in &signed.headers {
                extra.insert(name.clone(), value.clone());
            }
            (signed.method, signed.uri, extra, signed.body)
        }
        None => (
            Method::POST,
            request.url.clone(),
            extra,
            Bytes::from(request.body),
        ),
    };
    if !headers.contains_key(http::header::CONTENT_TYPE) && !body.is_empty() {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let mut builder = Request::builder().method(method).uri(uri);
    *builder.headers_mut().expect("a fresh builder has headers") = headers;
    let request = builder
        .body(Full::new(body))
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

/// The `public_key` manifest value that verifies what `key` signs for
/// `scheme`, as each provider shows it: Discord's hex, Standard Webhooks'
/// `whpk_` + base64, SendGrid's base64 SPKI. What `hookhost keygen` prints,
/// and how `send --key` configures the scheme it signs with.
pub fn public_key(scheme: &str, key: &PrivateKey) -> anyhow::Result<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(match (scheme, key) {
        ("discord", PrivateKey::Ed25519(key)) => hex::encode(key.verifying_key().to_bytes()),
        ("standard-webhooks", PrivateKey::Ed25519(key)) => {
            format!("whpk_{}", b64.encode(key.verifying_key().to_bytes()))
        }
        ("sendgrid", PrivateKey::P256(key)) => {
            use p256::pkcs8::EncodePublicKey as _;
            let der = key
                .verifying_key()
                .to_public_key_der()
                .context("cannot encode the public key")?;
            b64.encode(der.as_bytes())
        }
        _ => anyhow::bail!("`{scheme}` does not sign with a {} key", key.kind()),
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
