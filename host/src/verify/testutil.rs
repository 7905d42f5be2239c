//! Test helpers: the published vectors, and the contract every scheme meets
//! (generated into each scheme's tests by [`scheme_contract!`]).

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use serde_json::Value;

use super::{Input, Refusal, Scheme, Verdict};

/// Published vectors, kept inside the repository so tests need nothing else.
const VECTORS: &str = include_str!("testdata/vectors.json");

/// A fixed "now" for tests that do not come with their own.
pub(crate) const NOW: i64 = 1_700_000_000;

/// Where contract tests deliver; absolute so that twilio can sign it.
pub(crate) const URI: &str = "https://hooks.example.com/hooks/demo?x=1";

/// The vectors published for `scheme`.
pub(crate) fn vectors(scheme: &str) -> Vec<Value> {
    let all: Value = serde_json::from_str(VECTORS).expect("vectors.json is valid JSON");
    let found: Vec<Value> = all["vectors"]
        .as_array()
        .expect("`vectors` is a list")
        .iter()
        .filter(|v| v["scheme"] == scheme)
        .cloned()
        .collect();
    assert!(!found.is_empty(), "no vector for scheme `{scheme}`");
    found
}

/// A vector's `headers` object as a header map.
pub(crate) fn vector_headers(vector: &Value) -> HeaderMap {
    let pairs: Vec<(&str, &str)> = vector["headers"]
        .as_object()
        .expect("`headers` is an object")
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().expect("header values are strings")))
        .collect();
    headers(&pairs)
}

pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
            HeaderValue::from_str(value).expect("valid header value"),
        );
    }
    map
}

pub(crate) fn name(text: &'static str) -> HeaderName {
    HeaderName::from_static(text)
}

/// Verifies a `POST` to [`URI`], returning the whole verdict.
pub(crate) fn verdict_at(
    scheme: &dyn Scheme,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verdict, Refusal> {
    let uri: Uri = URI.parse().expect("valid URI");
    scheme.verify(&Input::post(headers, body, &uri, now))
}

/// Verifies a `POST` to [`URI`] that must be a delivery (not a
/// handshake); `Ok(())` whatever its signed id or replay key.
pub(crate) fn verify_at(
    scheme: &dyn Scheme,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), Refusal> {
    match verdict_at(scheme, headers, body, now)? {
        Verdict::Deliver { .. } => Ok(()),
        Verdict::Answer(handshake) => panic!("expected a delivery, got {handshake:?}"),
    }
}

/// Signs `signed` with `signer` at `signed_at`, then has `verifier` check
/// `sent` at `now`.
pub(crate) fn deliver(
    signer: &dyn Scheme,
    signed: &[u8],
    signed_at: i64,
    verifier: &dyn Scheme,
    sent: &[u8],
    now: i64,
) -> Result<(), Refusal> {
    let uri: Uri = URI.parse().expect("valid URI");
    let headers = signer
        .sign(signed, &uri, signed_at)
        .expect("signing succeeds");
    verify_at(verifier, &headers, sent, now)
}

/// Headers signed for `body` at [`NOW`], with `name` replaced by `value`
/// (or removed when `value` is `None`).
pub(crate) fn signed_with(
    scheme: &dyn Scheme,
    body: &[u8],
    name: &str,
    value: Option<&str>,
) -> HeaderMap {
    let uri: Uri = URI.parse().expect("valid URI");
    let mut headers = scheme.sign(body, &uri, NOW).expect("signing succeeds");
    let name = HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
    match value {
        Some(v) => {
            headers.insert(name, HeaderValue::from_str(v).expect("valid header value"));
        }
        None => {
            headers.remove(name);
        }
    }
    headers
}

/// Tests every scheme must pass. `$make` turns a list of secrets into the
/// scheme; `$first` and `$second` are two distinct valid secrets for it.
/// Add `covers_body` when any change to the body bytes must be refused.
macro_rules! scheme_contract {
    ($make:expr, [$first:expr, $second:expr], covers_body) => {
        $crate::verify::testutil::scheme_contract!($make, [$first, $second]);

        #[test]
        fn tampered_body_is_refused() {
            let scheme = contract_scheme(&[$first]);
            let got = $crate::verify::testutil::deliver(&*scheme, b"{\"amount\":1}", NOW_, &*scheme, b"{\"amount\":9}", NOW_);
            assert_eq!(got, Err($crate::verify::Refusal::BadSignature));
        }

        proptest::proptest! {
            #[test]
            fn any_flipped_body_byte_is_refused(
                body in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..512),
                index in proptest::prelude::any::<proptest::sample::Index>(),
                flip in 1u8..=255,
            ) {
                let scheme = contract_scheme(&[$first]);
                let mut sent = body.clone();
                sent[index.index(body.len())] ^= flip;
                let got = $crate::verify::testutil::deliver(&*scheme, &body, NOW_, &*scheme, &sent, NOW_);
                proptest::prop_assert_eq!(got, Err($crate::verify::Refusal::BadSignature));
            }
        }
    };
    ($make:expr, [$first:expr, $second:expr]) => {
        const NOW_: i64 = $crate::verify::testutil::NOW;

        fn contract_scheme(secrets: &[&str]) -> Box<dyn $crate::verify::Scheme> {
            let secrets: Vec<$crate::verify::Secret> = secrets.iter().map(|s| $crate::verify::Secret::from(*s)).collect();
            Box::new(($make)(secrets))
        }

        #[test]
        fn signed_request_verifies() {
            let scheme = contract_scheme(&[$first]);
            let body = b"{\"hello\":\"world\"}";
            assert_eq!($crate::verify::testutil::deliver(&*scheme, body, NOW_, &*scheme, body, NOW_), Ok(()));
        }

        #[test]
        fn empty_body_round_trips() {
            let scheme = contract_scheme(&[$first]);
            assert_eq!($crate::verify::testutil::deliver(&*scheme, b"", NOW_, &*scheme, b"", NOW_), Ok(()));
        }

        #[test]
        fn wrong_secret_is_refused() {
            let sender = contract_scheme(&[$second]);
            let receiver = contract_scheme(&[$first]);
            let got = $crate::verify::testutil::deliver(&*sender, b"{}", NOW_, &*receiver, b"{}", NOW_);
            assert_eq!(got, Err($crate::verify::Refusal::BadSignature));
        }

        #[test]
        fn second_rotated_secret_matches() {
            let sender = contract_scheme(&[$second]);
            let receiver = contract_scheme(&[$first, $second]);
            let got = $crate::verify::testutil::deliver(&*sender, b"{}", NOW_, &*receiver, b"{}", NOW_);
            assert_eq!(got, Ok(()));
        }

        #[test]
        fn signing_uses_the_first_secret() {
            let sender = contract_scheme(&[$first, $second]);
            let only_first = contract_scheme(&[$first]);
            let got = $crate::verify::testutil::deliver(&*sender, b"{}", NOW_, &*only_first, b"{}", NOW_);
            assert_eq!(got, Ok(()));
        }

        #[test]
        fn no_headers_is_refused() {
            let scheme = contract_scheme(&[$first]);
            let got = $crate::verify::testutil::verify_at(&*scheme, &http::HeaderMap::new(), b"{}", NOW_);
            assert!(got.is_err(), "{got:?}");
        }

        #[test]
        fn debug_output_hides_secrets() {
            let debug = format!("{:?}", contract_scheme(&[$first, $second]));
            assert!(!debug.contains($first) && !debug.contains($second), "{debug}");
            // A derived Debug would print the bytes as numbers and pass the
            // check above: the redaction marker proves the secrets went through
            // `Secret`'s own Debug.
            assert_eq!(debug.matches("<redacted>").count(), 2, "{debug}");
        }

        proptest::proptest! {
            #[test]
            fn random_bodies_round_trip(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
                let scheme = contract_scheme(&[$first]);
                let got = $crate::verify::testutil::deliver(&*scheme, &body, NOW_, &*scheme, &body, NOW_);
                proptest::prop_assert_eq!(got, Ok(()));
            }
        }
    };
}

pub(crate) use scheme_contract;
