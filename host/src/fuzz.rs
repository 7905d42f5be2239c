//! The bodies of the fuzz targets: one plain function per target, each
//! taking the fuzzer's bytes and panicking only when an invariant breaks.
//!
//! The libFuzzer harness in `fuzz/` (built by `make fuzz`, see
//! `docs/fuzzing.md`) calls these, and so does the normal test build
//! (`tests/all/fuzz.rs`), which replays every committed corpus file and a few
//! thousand seeded mutations through each: CI fuzzes a little without a
//! second, instrumented build. Not part of the host's API, hence hidden.
//!
//! No target does I/O: secret references other than literals are skipped
//! (`file:` would read the machine's files; `env:` resolves to a fixed
//! value), and every clock is the `now` in the input.

use std::path::Path;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use crate::config::Manifest;
use crate::runtime::{Header, Response};
use crate::secret::SecretResolver;
use crate::verify::{self, Input, RawVerify, Refusal};

/// A fuzz target's body: takes any bytes, panics only on a broken invariant.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus folder (`fuzz/corpus/NAME`) and
/// harness binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("verify", verify),
    ("manifest", manifest),
    ("host_toml", host_toml),
    ("twilio_form", twilio_form),
    ("admin_query", admin_query),
    ("guest_response", guest_response),
];

/// Resolves every `env:` reference to the same value, reads no file.
fn resolver_env(_name: &str) -> Result<String, std::env::VarError> {
    Ok("fuzz-env-secret".into())
}

/// Splits off the first line (without its `\n`).
fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// `Name: value` lines up to an empty line, then the body. Lines that are
/// not a valid header are skipped (the server would never pass them on).
fn headers_and_body(mut data: &[u8]) -> (HeaderMap, &[u8]) {
    let mut headers = HeaderMap::new();
    loop {
        let (current, rest) = line(data);
        if current.is_empty() {
            return (headers, rest);
        }
        data = rest;
        let Some(colon) = current.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = current[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&current[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
        if rest.is_empty() {
            return (headers, rest);
        }
    }
}

/// Every signature scheme's header parsing and verification.
///
/// The input is a manifest's `[verify]` table, then a request as text:
///
/// ```text
/// scheme = "stripe"
/// secrets = ["…"]
/// ---
/// NOW (unix seconds)
/// URI
/// Name: value
/// …
///
/// BODY
/// ```
///
/// The table is read and the scheme built as the manifest loader does
/// (`file:` references are skipped: they would read this machine's files),
/// then the request is verified, with the test certificate and JWKS as the
/// keys already fetched (see `fetched_keys`). Whatever the answer, the scheme's own
/// signature of the same body at the same time (if `NOW` is not negative)
/// must then verify (except `twilio`'s, whose URL may come from the
/// request's `Host` header, which signing cannot see, and `graph`'s and
/// `linear`'s, whose proof or timestamp is in the body as given).
pub fn verify(data: &[u8]) {
    let _ = verify_outcome(data);
}

/// [`verify`], with the scheme's answer to the request; `None` when the
/// input is not a table and a request, or the table builds no scheme.
pub fn verify_outcome(data: &[u8]) -> Option<Result<(), Refusal>> {
    let split = data.windows(5).position(|w| w == b"\n---\n")?;
    let table = std::str::from_utf8(&data[..split]).ok()?;
    if table.contains("file:") {
        return None;
    }
    let raw: RawVerify = toml::from_str(table).ok()?;
    let rest = &data[split + 5..];
    let (now, rest) = line(rest);
    let (uri, rest) = line(rest);
    let now = std::str::from_utf8(now).ok()?.trim().parse::<i64>().ok()?;
    let uri = std::str::from_utf8(uri).ok()?.parse::<Uri>().ok()?;
    let resolver = SecretResolver::with_env(Path::new("."), &resolver_env);
    let scheme = verify::build(&raw, &resolver).ok()?;
    let (headers, body) = headers_and_body(rest);
    let mut input = Input::post(&headers, body, &uri, now);
    input.keys = fetched_keys();
    let outcome = scheme.verify(&input).map(|_| ());
    if let Err(refusal) = &outcome {
        let _ = refusal.reason();
    }
    // The clock never reads before 1970: a signature made at a negative
    // time (which the timestamp parsers rightly refuse) proves nothing.
    // The request as signed is checked, not the input's body with signed
    // headers: Mailgun and SNS write the body they sign. Not checked where
    // what signing cannot set decides: Twilio's URL (`Host`), Graph's
    // `clientState` and Linear's `webhookTimestamp` (both in the body as
    // given). A body the scheme cannot read (`malformed body`, e.g. a
    // Zoom validation without a usable `plainToken`) is refused whoever
    // signed it.
    let unsignable = ["twilio", "graph", "linear"];
    if !unsignable.contains(&raw.scheme.as_str())
        && now >= 0
        && let Ok(signed) = scheme.sign_request(&verify::Outgoing::new(body, &uri, now))
    {
        let input = Input {
            method: &signed.method,
            headers: &signed.headers,
            body: &signed.body,
            uri: &signed.uri,
            now,
            keys: fetched_keys(),
        };
        match scheme.verify(&input) {
            Ok(_) | Err(Refusal::MalformedBody(_)) => {}
            Err(refusal) => panic!("{} refuses its own signature: {refusal}", raw.scheme),
        }
    }
    Some(outcome)
}

/// What the `verify` target's `sns` and `pubsub` requests find already
/// fetched: the test certificate at [`verify::TEST_CERT_URL`] and a JWKS of
/// the same RSA key (kid [`verify::TEST_KID`]) at Google's URL, so their
/// seeds, signed with `host/src/verify/testdata/sns-test-key.pem`, reach the
/// signature check. Fetched "at" 0 and never expiring: `now` is the input's.
fn fetched_keys() -> &'static verify::KeyCache {
    static KEYS: std::sync::OnceLock<verify::KeyCache> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        use base64::Engine as _;
        use rsa::traits::PublicKeyParts as _;
        let keys = verify::KeyCache::new(4, std::time::Duration::from_secs(u64::MAX / 4));
        keys.insert(
            verify::TEST_CERT_URL,
            bytes::Bytes::from_static(include_bytes!("verify/testdata/sns-test-cert.pem")),
            0,
        );
        let key = verify::PrivateKey::from_pem(include_str!("verify/testdata/sns-test-key.pem"))
            .expect("the test key is PKCS#8 PEM");
        let public = key.rsa().expect("an RSA key").to_public_key();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwks = serde_json::json!({"keys": [{
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": verify::TEST_KID,
            "n": b64.encode(public.n_bytes()), "e": b64.encode(public.e_bytes()),
        }]});
        keys.insert(
            verify::DEFAULT_JWKS_URL,
            bytes::Bytes::from(jwks.to_string()),
            0,
        );
        keys
    })
}

/// The plugin manifest parser and validator (`NAME.toml`).
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `file:` would read this machine's files.
    if text.contains("file:") {
        return;
    }
    let resolver = SecretResolver::with_env(Path::new("."), &resolver_env);
    if let Ok(manifest) = Manifest::parse("fuzz", text, &resolver) {
        let _ = manifest.grants("fuzz");
    }
}

/// The `hookhost.toml` reader, through `serve`'s flag validation.
pub fn host_toml(data: &[u8]) {
    crate::settings::fuzz_file(data);
}

/// Twilio's form decoding, sorting and URL handling.
pub fn twilio_form(data: &[u8]) {
    verify::fuzz_form(data);
}

/// The admin API's query string and event id decoding.
pub fn admin_query(data: &[u8]) {
    crate::admin::fuzz_query(data);
}

/// What the host does with a plugin's response: the runtime's validation,
/// then the server's conversion into the sender's answer.
///
/// The input is two bytes of status (big-endian), then `Name: value` lines up
/// to an empty line, then the body. A response the runtime accepts must keep
/// its status, carry no header the host reserves, and carry the host's
/// delivery id whatever the plugin set.
pub fn guest_response(data: &[u8]) {
    let Some((status, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = u16::from_be_bytes(*status);
    let mut headers = Vec::new();
    let mut rest = rest;
    loop {
        let (current, after) = line(rest);
        rest = after;
        if current.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(current);
        let (name, value) = text.split_once(':').unwrap_or((&text, ""));
        headers.push(Header {
            name: name.to_owned(),
            value: value.trim_start().to_owned(),
        });
    }
    let response = Response {
        status,
        headers,
        body: rest.to_vec(),
    };
    // Refusals are the runtime's to decide (a status out of range, too many
    // or too large headers); what it lets through must be sendable.
    let Ok(response) = crate::runtime::validate_response(response) else {
        return;
    };
    let body_len = response.body.len();
    let answer = crate::server::plugin_response(response, "fuzz-delivery");
    assert_eq!(answer.status().as_u16(), status);
    for reserved in crate::server::RESERVED_HEADERS {
        assert!(
            answer.headers().get(*reserved).is_none(),
            "reserved header {reserved} passed through"
        );
    }
    assert_eq!(
        answer.headers().get(crate::server::DELIVERY_HEADER),
        Some(&HeaderValue::from_static("fuzz-delivery"))
    );
    assert_eq!(
        http_body::Body::size_hint(answer.body()).exact(),
        Some(body_len as u64)
    );
}
