//! Twilio: `X-Twilio-Signature: <base64>`, HMAC-SHA1 keyed with the auth
//! token, of the full public URL followed by every form parameter's name and
//! value, sorted.
//!
//! Twilio signs the URL it called, which a proxy may have changed on the way
//! in. That URL is the configured `url` (scheme, host and path; the query is
//! taken from the request), or else it is rebuilt from `X-Forwarded-Proto`
//! (default `https`), `X-Forwarded-Host` or else the `Host` header (or the
//! request's authority under HTTP/2), and the request's path and query.
//! The server passes the `X-Forwarded-*` headers on only from a trusted
//! proxy (`--trusted-proxy`), so a client cannot choose them. Twilio is inconsistent about
//! default ports, so, like its own libraries, both `host` and `host:443` are
//! tried.
//!
//! Only `application/x-www-form-urlencoded` bodies are covered by the
//! signature itself. For any other body Twilio adds a `bodySHA256` query
//! parameter (covered, as part of the URL), which must equal the body's
//! SHA-256. A non-empty body with neither is refused: nothing would vouch
//! for it. [`Scheme::sign`] treats a non-empty body as a form.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::CONTENT_TYPE;
use http::uri::Authority;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::mac::{self, Algorithm};
use super::{
    Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, decode_base64,
    header_value, required_header,
};

pub(crate) const NAME: &str = "twilio";
const SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORM: &str = "application/x-www-form-urlencoded";

/// Why a configured public URL is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUrl {
    #[error("not an absolute http(s) URL (e.g. `https://example.com/hooks/sms`)")]
    NotAbsolute,
    #[error(
        "must not contain a query or fragment: the query Twilio sends is taken from the request"
    )]
    HasQuery,
}

#[derive(Debug)]
pub struct Twilio {
    secrets: Vec<Secret>,
    /// Scheme, authority and path of the public URL, as configured.
    url: Option<String>,
}

impl Twilio {
    /// `url` is the public URL Twilio is configured to call, without its query.
    pub fn new(secrets: Vec<Secret>, url: Option<&str>) -> Result<Self, InvalidUrl> {
        if let Some(url) = url {
            check_url(url)?;
        }
        Ok(Twilio {
            secrets,
            url: url.map(str::to_owned),
        })
    }

    /// The URL Twilio signed for a request to `uri`, rebuilt from `headers`
    /// unless configured.
    fn public_url(&self, headers: &HeaderMap, uri: &Uri) -> Option<String> {
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        if let Some(base) = &self.url {
            return Some(match uri.query() {
                Some(query) => format!("{base}?{query}"),
                None => base.clone(),
            });
        }
        let proto = headers
            .get(FORWARDED_PROTO)
            .and_then(|v| v.to_str().ok())
            // A chain of proxies appends; the first entry is the client's.
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| v == "http" || v == "https")
            .unwrap_or_else(|| "https".to_owned());
        // A proxy that rewrites `Host` says the public one in
        // `X-Forwarded-Host`; the server removes that header (and
        // `X-Forwarded-Proto`) unless the peer is a trusted proxy.
        let forwarded_host = headers
            .get(FORWARDED_HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let host = match (forwarded_host, headers.get(http::header::HOST)) {
            (Some(forwarded), _) => forwarded.to_owned(),
            (None, Some(host)) => host.to_str().ok()?.to_owned(),
            (None, None) => uri.authority()?.as_str().to_owned(),
        };
        Some(format!("{proto}://{host}{path_and_query}"))
    }
}

/// Whether `url` can be a configured public URL.
pub(crate) fn check_url(url: &str) -> Result<(), InvalidUrl> {
    let uri: Uri = url.parse().map_err(|_| InvalidUrl::NotAbsolute)?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(InvalidUrl::NotAbsolute);
    }
    if url.contains(['?', '#']) {
        return Err(InvalidUrl::HasQuery);
    }
    Ok(())
}

/// `url` as given, and with its default port added or its port removed.
fn port_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let Ok(parsed) = authority.parse::<Authority>() else {
        return variants;
    };
    let toggled = match parsed.port_u16() {
        Some(port) => authority
            .strip_suffix(&format!(":{port}"))
            .unwrap_or(authority)
            .to_owned(),
        None if scheme.eq_ignore_ascii_case("http") => format!("{authority}:80"),
        None => format!("{authority}:443"),
    };
    variants.push(format!("{scheme}://{toggled}{tail}"));
    variants
}

/// Form pairs, percent-decoded, sorted by name then value. Repeated pairs
/// are kept: what a sender repeated is part of what it signed.
fn sorted_form(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = body
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (percent_decode(&pair[..eq]), percent_decode(&pair[eq + 1..])),
            None => (percent_decode(pair), Vec::new()),
        })
        .collect();
    pairs.sort();
    pairs
}

/// `application/x-www-form-urlencoded` decoding; a `%` not followed by two
/// hex digits is kept as is, as browsers and Python do.
pub(crate) fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: &u8| (*b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                input.get(i + 1).and_then(hex),
                input.get(i + 2).and_then(hex),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(FORM))
}

/// The signed message: the URL, then each form pair's name and value.
fn signed_parts<'a>(url: &'a str, form: &'a [(Vec<u8>, Vec<u8>)]) -> Vec<&'a [u8]> {
    let mut parts = Vec::with_capacity(1 + 2 * form.len());
    parts.push(url.as_bytes());
    for (name, value) in form {
        parts.push(name);
        parts.push(value);
    }
    parts
}

/// The messages Twilio's libraries build when a name repeats: every pair
/// (above), the name once followed by all its values (twilio-node), and
/// every distinct pair (twilio-python). Without repeated names they are one
/// and the same message.
fn signed_variants<'a>(url: &'a str, form: &'a [(Vec<u8>, Vec<u8>)]) -> Vec<Vec<&'a [u8]>> {
    let mut variants = vec![signed_parts(url, form)];
    if form.windows(2).any(|w| w[0].0 == w[1].0) {
        let mut grouped = vec![url.as_bytes()];
        for (i, (name, value)) in form.iter().enumerate() {
            if i == 0 || form[i - 1].0 != *name {
                grouped.push(name);
            }
            grouped.push(value);
        }
        variants.push(grouped);
        let mut distinct = vec![url.as_bytes()];
        for (i, (name, value)) in form.iter().enumerate() {
            if i == 0 || form[i - 1] != form[i] {
                distinct.push(name);
                distinct.push(value);
            }
        }
        variants.push(distinct);
    }
    variants
}

/// Whether the `bodySHA256` query parameter vouches for `body`.
fn body_hash_matches(uri: &Uri, body: &[u8]) -> Option<bool> {
    let query = uri.query()?;
    let (_, claimed) = sorted_form(query.as_bytes())
        .into_iter()
        .find(|(name, _)| name == b"bodySHA256")?;
    let claimed = hex::decode(claimed).ok()?;
    let actual: [u8; 32] = Sha256::digest(body).into();
    Some(actual.as_slice().ct_eq(&claimed).into())
}

impl Scheme for Twilio {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let value = required_header(
            input.headers,
            &SIGNATURE,
            Refusal::MissingSignature,
            Refusal::MalformedSignature,
        )?;
        let tag = decode_base64(value).ok_or(Refusal::MalformedSignature(SIGNATURE))?;
        let form = if is_form(input.headers) {
            sorted_form(input.body)
        } else {
            match body_hash_matches(input.uri, input.body) {
                Some(true) => Vec::new(),
                None if input.body.is_empty() => Vec::new(),
                Some(false) | None => return Err(Refusal::BadSignature),
            }
        };
        // Without a Host header or a configured URL there is no URL to check.
        let url = self
            .public_url(input.headers, input.uri)
            .ok_or(Refusal::BadSignature)?;
        let candidates = [tag];
        let matched = port_variants(&url).iter().any(|url| {
            signed_variants(url, &form).iter().any(|parts| {
                mac::any_key_matches(Algorithm::Sha1, &self.secrets, parts, &candidates)
            })
        });
        if matched {
            Ok(Verdict::deliver())
        } else {
            Err(Refusal::BadSignature)
        }
    }

    /// `uri` must be absolute unless `url` is configured.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let (body, uri, _now) = (out.body, out.uri, out.now);
        let key = self.secrets.first().ok_or(SignError::NoSecret)?;
        let url = match (&self.url, uri.scheme_str(), uri.authority()) {
            (Some(_), _, _) => self
                .public_url(&HeaderMap::new(), uri)
                .ok_or(SignError::NeedsAbsoluteUrl)?,
            (None, Some(_), Some(_)) => uri.to_string(),
            (None, _, _) => return Err(SignError::NeedsAbsoluteUrl),
        };
        let form = sorted_form(body);
        let tag = mac::compute(Algorithm::Sha1, key, &signed_parts(&url, &form));
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE, header_value(&STANDARD.encode(tag.as_bytes()))?);
        if !body.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(FORM));
        }
        Signed::post(out, headers)
    }
}

/// The fuzz target for Twilio's form and URL handling (`crate::fuzz`):
/// `data` is taken as a form body, as a public URL and as a query carrying
/// `bodySHA256`. Panics only on a broken invariant.
pub(crate) fn fuzz_form(data: &[u8]) {
    let form = sorted_form(data);
    assert!(
        form.windows(2).all(|pair| pair[0] <= pair[1]),
        "sorted_form must sort, keeping repeated pairs (they are signed)"
    );
    // Decoding never grows its input, and leaves text without escapes alone.
    for part in data.split(|&b| b == b'&') {
        let decoded = percent_decode(part);
        assert!(decoded.len() <= part.len());
        if !part.contains(&b'%') && !part.contains(&b'+') {
            assert_eq!(decoded, part);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if check_url(text).is_ok() {
            let variants = port_variants(text);
            assert_eq!(variants[0], text);
        }
        if let Ok(uri) = text.parse::<Uri>() {
            let _ = body_hash_matches(&uri, data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with};
    use super::*;

    fn twilio(secrets: Vec<Secret>) -> Twilio {
        Twilio::new(secrets, None).expect("no URL to check")
    }

    testutil::scheme_contract!(twilio, ["12345", "67890"]);

    /// Percent-encodes a form the way a sender would.
    fn encode_form(pairs: &[(&str, &str)]) -> String {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    b' ' => "+".to_owned(),
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn verify(scheme: &Twilio, headers: &HeaderMap, uri: &str, body: &[u8]) -> Result<(), Refusal> {
        let uri: Uri = uri.parse().unwrap();
        scheme
            .verify(&Input::post(headers, body, &uri, NOW))
            .map(|_| ())
    }

    /// The vector's form body, its signature header, a form content type,
    /// and any `extra` headers; plus the received path and query.
    fn vector_request(extra: &[(&str, &str)]) -> (Secret, HeaderMap, String, String) {
        let v = &testutil::vectors(NAME)[0];
        let form: Vec<(&str, &str)> = v["form"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        let mut headers = testutil::vector_headers(v);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        for (k, val) in extra {
            headers.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                val.parse().unwrap(),
            );
        }
        let url: Uri = v["url"].as_str().unwrap().parse().unwrap();
        let path_and_query = url.path_and_query().unwrap().to_string();
        (
            Secret::from(v["secret"].as_str().unwrap()),
            headers,
            path_and_query,
            encode_form(&form),
        )
    }

    #[test]
    fn published_vector_verifies_with_configured_url() {
        let (secret, headers, pq, body) = vector_request(&[("host", "internal:8080")]);
        let scheme = Twilio::new(vec![secret], Some("https://mycompany.com/myapp.php")).unwrap();
        assert_eq!(verify(&scheme, &headers, &pq, body.as_bytes()), Ok(()));
    }

    #[test]
    fn published_vector_verifies_with_url_from_host_header() {
        let (secret, headers, pq, body) = vector_request(&[("host", "mycompany.com")]);
        assert_eq!(
            verify(&twilio(vec![secret]), &headers, &pq, body.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn published_vector_verifies_with_explicit_default_port() {
        let (secret, headers, pq, body) = vector_request(&[("host", "mycompany.com:443")]);
        assert_eq!(
            verify(&twilio(vec![secret]), &headers, &pq, body.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn published_vector_verifies_under_http2_without_host_header() {
        let (secret, headers, pq, body) = vector_request(&[]);
        let absolute = format!("https://mycompany.com{pq}");
        assert_eq!(
            verify(&twilio(vec![secret]), &headers, &absolute, body.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn published_vector_is_what_sign_produces() {
        let v = &testutil::vectors(NAME)[0];
        let (secret, headers, _, body) = vector_request(&[]);
        let uri: Uri = v["url"].as_str().unwrap().parse().unwrap();
        let signed = twilio(vec![secret])
            .sign(body.as_bytes(), &uri, NOW)
            .unwrap();
        assert_eq!(signed[&SIGNATURE], headers[&SIGNATURE]);
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let (secret, headers, pq, body) = vector_request(&[("host", "mycompany.com")]);
        let reversed = body.split('&').rev().collect::<Vec<_>>().join("&");
        assert_eq!(
            verify(&twilio(vec![secret]), &headers, &pq, reversed.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn forwarded_proto_is_part_of_the_url() {
        let (secret, headers, pq, body) =
            vector_request(&[("host", "mycompany.com"), ("x-forwarded-proto", "http")]);
        assert_eq!(
            verify(&twilio(vec![secret]), &headers, &pq, body.as_bytes()),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn forwarded_host_is_the_public_host_over_the_host_header() {
        // The published vector is signed for mycompany.com.
        let (secret, headers, pq, body) = vector_request(&[
            ("host", "10.0.0.7:8080"),
            ("x-forwarded-host", "mycompany.com, proxy.internal"),
        ]);
        assert_eq!(
            verify(
                &twilio(vec![secret.clone()]),
                &headers,
                &pq,
                body.as_bytes()
            ),
            Ok(())
        );
        let (_, headers, _, _) = vector_request(&[
            ("host", "mycompany.com"),
            ("x-forwarded-host", "other.example.com"),
        ]);
        assert_eq!(
            verify(&twilio(vec![secret]), &headers, &pq, body.as_bytes()),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn changed_parameter_or_query_is_refused() {
        let (secret, headers, pq, body) = vector_request(&[("host", "mycompany.com")]);
        let scheme = twilio(vec![secret]);
        let changed = body.replace("Digits=1234", "Digits=9999");
        assert_eq!(
            verify(&scheme, &headers, &pq, changed.as_bytes()),
            Err(Refusal::BadSignature)
        );
        let query = pq.replace("foo=1", "foo=2");
        assert_eq!(
            verify(&scheme, &headers, &query, body.as_bytes()),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn missing_header_is_missing_signature() {
        let scheme = twilio(vec![Secret::from("s")]);
        let headers = signed_with(&scheme, b"a=1", "x-twilio-signature", None);
        assert_eq!(
            testutil::verify_at(&scheme, &headers, b"a=1", NOW),
            Err(Refusal::MissingSignature(name("x-twilio-signature")))
        );
    }

    #[test]
    fn non_base64_is_malformed_signature() {
        let scheme = twilio(vec![Secret::from("s")]);
        let headers = signed_with(&scheme, b"a=1", "x-twilio-signature", Some("%%%"));
        assert_eq!(
            testutil::verify_at(&scheme, &headers, b"a=1", NOW),
            Err(Refusal::MalformedSignature(name("x-twilio-signature")))
        );
    }

    #[test]
    fn json_body_needs_a_matching_body_hash() {
        let scheme = twilio(vec![Secret::from("s")]);
        let body = br#"{"a":1}"#;
        let hash = hex::encode(Sha256::digest(body));
        let with_hash: Uri = format!("https://example.com/hook?bodySHA256={hash}")
            .parse()
            .unwrap();
        let mut headers = scheme.sign(b"", &with_hash, NOW).unwrap();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let pq = with_hash.path_and_query().unwrap().as_str();
        headers.insert(http::header::HOST, HeaderValue::from_static("example.com"));
        assert_eq!(verify(&scheme, &headers, pq, body), Ok(()));
        assert_eq!(
            verify(&scheme, &headers, pq, br#"{"a":2}"#),
            Err(Refusal::BadSignature)
        );
        // The same URL signature without the hash would vouch for any body.
        let bare = scheme
            .sign(b"", &"https://example.com/hook".parse().unwrap(), NOW)
            .unwrap();
        let mut bare_headers = bare.clone();
        bare_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        bare_headers.insert(http::header::HOST, HeaderValue::from_static("example.com"));
        assert_eq!(
            verify(&scheme, &bare_headers, "/hook", body),
            Err(Refusal::BadSignature)
        );
        assert_eq!(verify(&scheme, &bare_headers, "/hook", b""), Ok(()));
    }

    #[test]
    fn no_url_to_check_is_refused() {
        let scheme = twilio(vec![Secret::from("s")]);
        let headers = scheme
            .sign(b"", &"https://example.com/hook".parse().unwrap(), NOW)
            .unwrap();
        assert_eq!(
            verify(&scheme, &headers, "/hook", b""),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn repeated_form_pairs_are_signed_not_dropped() {
        let scheme = Twilio::new(vec![Secret::from("12345")], None).unwrap();
        let url = "https://mycompany.com/myapp.php";
        let sign = |parts: &[&[u8]]| {
            STANDARD.encode(mac::compute(Algorithm::Sha1, &Secret::from("12345"), parts).as_bytes())
        };
        let body = b"To=%2B1&MediaUrl=b&MediaUrl=a&MediaUrl=a";
        let every = sign(&[
            url.as_bytes(),
            b"MediaUrl",
            b"a",
            b"MediaUrl",
            b"a",
            b"MediaUrl",
            b"b",
            b"To",
            b"+1",
        ]);
        let node = sign(&[url.as_bytes(), b"MediaUrl", b"a", b"a", b"b", b"To", b"+1"]);
        let python = sign(&[
            url.as_bytes(),
            b"MediaUrl",
            b"a",
            b"MediaUrl",
            b"b",
            b"To",
            b"+1",
        ]);
        for signature in [&every, &node, &python] {
            let headers = testutil::headers(&[
                ("x-twilio-signature", signature),
                ("content-type", FORM),
                ("host", "mycompany.com"),
            ]);
            assert_eq!(verify(&scheme, &headers, url, body), Ok(()), "{signature}");
        }
        // Dropping a repeated pair from the body changes what was signed
        // for the every-pair and Node constructions.
        let fewer = b"To=%2B1&MediaUrl=b&MediaUrl=a";
        for signature in [&every, &node] {
            let headers = testutil::headers(&[
                ("x-twilio-signature", signature),
                ("content-type", FORM),
                ("host", "mycompany.com"),
            ]);
            assert_eq!(
                verify(&scheme, &headers, url, fewer),
                Err(Refusal::BadSignature)
            );
        }
    }

    #[test]
    fn signing_needs_a_full_url() {
        let scheme = twilio(vec![Secret::from("s")]);
        assert_eq!(
            scheme.sign(b"", &"/hook".parse().unwrap(), NOW),
            Err(SignError::NeedsAbsoluteUrl)
        );
        let configured =
            Twilio::new(vec![Secret::from("s")], Some("https://example.com/hook")).unwrap();
        assert!(
            configured
                .sign(b"", &"/hook?x=1".parse().unwrap(), NOW)
                .is_ok()
        );
    }

    #[test]
    fn configured_url_must_be_absolute_without_query() {
        assert_eq!(
            Twilio::new(vec![], Some("/hooks/sms")).unwrap_err(),
            InvalidUrl::NotAbsolute
        );
        assert_eq!(
            Twilio::new(vec![], Some("ftp://x.com/a")).unwrap_err(),
            InvalidUrl::NotAbsolute
        );
        assert_eq!(
            Twilio::new(vec![], Some("https://x.com/a?b=1")).unwrap_err(),
            InvalidUrl::HasQuery
        );
    }

    #[test]
    fn port_variants_add_or_remove_the_port() {
        assert_eq!(
            port_variants("https://a.com/x?y"),
            ["https://a.com/x?y", "https://a.com:443/x?y"]
        );
        assert_eq!(
            port_variants("http://a.com"),
            ["http://a.com", "http://a.com:80"]
        );
        assert_eq!(
            port_variants("https://a.com:8443/x"),
            ["https://a.com:8443/x", "https://a.com/x"]
        );
        assert_eq!(
            port_variants("https://[::1]:8443/x"),
            ["https://[::1]:8443/x", "https://[::1]/x"]
        );
    }

    #[test]
    fn form_decoding() {
        assert_eq!(percent_decode(b"a+b%2B%41%zz%4"), b"a b+A%zz%4");
        assert_eq!(
            sorted_form(b"b=2&a=1&&b=1&a=1&c"),
            [
                (b"a".to_vec(), b"1".to_vec()),
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec()),
                (b"c".to_vec(), vec![])
            ]
        );
    }
}
