//! HubSpot v3: `X-HubSpot-Signature-v3: <base64>`, HMAC-SHA256 keyed with
//! the app's client secret of method + URI + body +
//! `X-HubSpot-Request-Timestamp` (Unix milliseconds), which must be less
//! than the tolerance (default 5 minutes, HubSpot's) old, and not in the
//! future.
//!
//! The URI is the full URL HubSpot called: the configured `url` (scheme,
//! host and path) with the request's query, or else `https://` + `Host` +
//! path and query. HubSpot signs it with a few characters percent-decoded
//! (`%3A` `%2F` `%3F` `%40` `%21` `%24` `%27` `%28` `%29` `%2A` `%2C`
//! `%3B`), so the same decoding is applied before signing.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, Uri};

use super::{
    Input, Outgoing, Refusal, ReplayKey, Scheme, Secret, SignError, Signed, Verdict, Window,
    check_timestamp, decode_base64, header_value, mac, signature_and_timestamp, tolerance_secs,
};

pub(crate) const NAME: &str = "hubspot";
const SIGNATURE: HeaderName = HeaderName::from_static("x-hubspot-signature-v3");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-hubspot-request-timestamp");

#[derive(Debug)]
pub struct Hubspot {
    secrets: Vec<Secret>,
    url: Option<String>,
    tolerance: i64,
}

impl Hubspot {
    pub fn new(secrets: Vec<Secret>, url: Option<String>, tolerance: Duration) -> Self {
        Hubspot {
            secrets,
            url,
            tolerance: tolerance_secs(tolerance),
        }
    }

    fn full_url(&self, headers: &HeaderMap, uri: &Uri) -> Option<String> {
        let url = match (&self.url, uri.scheme_str(), uri.authority()) {
            (Some(base), _, _) => match uri.query() {
                Some(q) => format!("{base}?{q}"),
                None => base.clone(),
            },
            (None, Some(scheme), Some(authority)) => {
                format!("{scheme}://{authority}{}", uri.path_and_query()?.as_str())
            }
            (None, _, _) => {
                let host = headers.get(http::header::HOST)?.to_str().ok()?;
                format!("https://{host}{}", uri.path_and_query()?.as_str())
            }
        };
        Some(decode_hubspot(&url))
    }
}

/// The percent-encodings HubSpot decodes before signing.
fn decode_hubspot(url: &str) -> String {
    const DECODED: [(&str, &str); 12] = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    'outer: while !rest.is_empty() {
        for (code, ch) in DECODED {
            if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(code) {
                out.push_str(ch);
                rest = &rest[3..];
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("non-empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

impl Scheme for Hubspot {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let (signature, timestamp, ms) =
            signature_and_timestamp(input.headers, &SIGNATURE, &TIMESTAMP)?;
        let tag = decode_base64(signature).ok_or(Refusal::MalformedSignature(SIGNATURE))?;
        let ts = ms.div_euclid(1000);
        check_timestamp(ts, input.now, self.tolerance, Window::BothWays)?;
        let url = self
            .full_url(input.headers, input.uri)
            .ok_or(Refusal::BadSignature)?;
        if !mac::any_key_matches(
            mac::Algorithm::Sha256,
            &self.secrets,
            &[
                input.method.as_str().as_bytes(),
                url.as_bytes(),
                input.body,
                timestamp.as_bytes(),
            ],
            &[tag],
        ) {
            return Err(Refusal::BadSignature);
        }
        Ok(Verdict::Deliver {
            signed_id: None,
            replay: Some(ReplayKey::new(
                NAME,
                &[timestamp.as_bytes(), signature.as_bytes()],
                ts.saturating_add(self.tolerance),
            )),
        })
    }

    /// `out.uri` must be absolute unless `url` is configured.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let key = self.secrets.first().ok_or(SignError::NoSecret)?;
        let url = self
            .full_url(&HeaderMap::new(), out.uri)
            .ok_or(SignError::NeedsAbsoluteUrl)?;
        // HubSpot sends milliseconds: a time past what they can hold would
        // be signed as another (saturated) time, one the check refuses.
        let timestamp = out
            .now
            .checked_mul(1000)
            .ok_or(SignError::Unsupported(
                "a time past what milliseconds can hold",
            ))?
            .to_string();
        let tag = mac::compute(
            mac::Algorithm::Sha256,
            key,
            &[b"POST", url.as_bytes(), out.body, timestamp.as_bytes()],
        );
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE, header_value(&STANDARD.encode(tag.as_bytes()))?);
        headers.insert(TIMESTAMP, header_value(&timestamp)?);
        Signed::post(out, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, verify_at};
    use super::*;

    fn hubspot(secrets: Vec<Secret>) -> Hubspot {
        Hubspot::new(secrets, None, Duration::from_secs(300))
    }

    testutil::scheme_contract!(hubspot, ["client-secret-1", "client-secret-2"], covers_body);

    #[test]
    fn a_time_past_what_milliseconds_hold_is_not_signed_as_another() {
        // Found by the fuzz replay: `now * 1000` saturated, and the
        // signed timestamp was not `now`.
        let scheme = Hubspot::new(
            vec![Secret::from("s")],
            Some("https://hooks.example.com/hooks/demo".into()),
            Duration::from_secs(300),
        );
        let uri = testutil::URI.parse().unwrap();
        assert!(matches!(
            scheme.sign(b"[]", &uri, i64::MAX / 100),
            Err(SignError::Unsupported(_))
        ));
    }

    #[test]
    fn the_url_with_hubspot_decoding_is_signed() {
        assert_eq!(
            decode_hubspot("https://a.com/x%3Ay%2fz?q=%40me%20"),
            "https://a.com/x:y/z?q=@me%20"
        );
        let scheme = Hubspot::new(
            vec![Secret::from("s")],
            Some("https://hooks.example.com/hooks/demo".into()),
            Duration::from_secs(300),
        );
        let headers = scheme
            .sign(b"[]", &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        assert_eq!(verify_at(&scheme, &headers, b"[]", NOW), Ok(()));
        let elsewhere = Hubspot::new(
            vec![Secret::from("s")],
            Some("https://hooks.example.com/hooks/other".into()),
            Duration::from_secs(300),
        );
        assert_eq!(
            verify_at(&elsewhere, &headers, b"[]", NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn timestamps_are_milliseconds_within_five_minutes() {
        let scheme = hubspot(vec![Secret::from("s")]);
        assert_eq!(
            testutil::deliver(&scheme, b"{}", NOW - 300, &scheme, b"{}", NOW),
            Ok(())
        );
        assert!(matches!(
            testutil::deliver(&scheme, b"{}", NOW - 301, &scheme, b"{}", NOW),
            Err(Refusal::TimestampOutsideTolerance { age: 301, .. })
        ));
    }
}
