//! Cost of verifying one request, per scheme, at 1 KiB and 64 KiB bodies.
//!
//! `cargo bench -p hookhost --bench verify`. The bar (issue 3): a 64 KiB body
//! verifies in under 50 µs. Each request is signed first with the scheme's own
//! signing code (key-pair schemes with a test key), so what is measured is the
//! accepting path (the expensive one: a refusal can stop early). Schemes with
//! fetched keys (SNS, Pub/Sub) find them already in the key cache, as after
//! the host's first fetch.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hookhost::secret::SecretResolver;
use hookhost::verify::{self, Input, KeyCache, Outgoing, PrivateKey, RawVerify};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// After the test certificate's notBefore, so SNS accepts it.
const NOW: i64 = 1_800_000_000;
const RSA_KEY: &str = include_str!("../src/verify/testdata/sns-test-key.pem");
const SNS_CERT: &str = include_str!("../src/verify/testdata/sns-test-cert.pem");
const SNS_CERT_URL: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-hookhost-test.pem";
const JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

fn ed25519() -> PrivateKey {
    PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[7; 32]))
}

fn p256() -> PrivateKey {
    PrivateKey::P256(p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap())
}

fn rsa() -> PrivateKey {
    PrivateKey::from_pem(RSA_KEY).unwrap()
}

/// The manifest table for `name`, and the private key it is signed with.
fn scheme(name: &str) -> (RawVerify, Option<PrivateKey>) {
    use p256::pkcs8::EncodePublicKey as _;
    let secret = format!("secret = \"{SECRET}\"\n");
    let (extra, key) = match name {
        "hmac" => (format!("{secret}header = \"X-Signature\"\n"), None),
        "meta" => (format!("{secret}verify_token = \"t\"\n"), None),
        "square" => (
            format!("{secret}url = \"https://hooks.example.com/hooks/bench\"\n"),
            None,
        ),
        "discord" => {
            let key = ed25519();
            let public = hex::encode(key.ed25519().unwrap().verifying_key().as_bytes());
            (format!("public_key = \"{public}\"\n"), Some(key))
        }
        "sendgrid" => {
            let key = p256();
            let der = key
                .p256()
                .unwrap()
                .verifying_key()
                .to_public_key_der()
                .unwrap();
            let public = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
            (format!("public_key = \"{public}\"\n"), Some(key))
        }
        "sns" => (String::new(), Some(rsa())),
        "pubsub" => (
            "audience = \"https://hooks.example.com/hooks/bench\"\n".to_owned(),
            Some(rsa()),
        ),
        _ => (secret, None),
    };
    let raw = toml::from_str(&format!("scheme = \"{name}\"\n{extra}")).unwrap();
    (raw, key)
}

/// A body of `size` bytes that the scheme accepts as a delivery.
fn body(name: &str, size: usize) -> Vec<u8> {
    let json = |prefix: String, suffix: &str| {
        let mut body = prefix.into_bytes();
        let pad = size.saturating_sub(body.len() + suffix.len());
        body.extend(std::iter::repeat_n(b'a', pad));
        body.extend_from_slice(suffix.as_bytes());
        body
    };
    match name {
        // Twilio signs form parameters; everything else signs raw bytes.
        "twilio" => json("Body=".into(), ""),
        "linear" => json(
            format!(r#"{{"webhookTimestamp":{},"pad":""#, NOW * 1000),
            r#""}"#,
        ),
        "graph" => json(
            format!(r#"{{"value":[{{"clientState":"{SECRET}","pad":""#),
            r#""}]}"#,
        ),
        "github" | "gitlab" | "shopify" | "token" | "hmac" => {
            (0..size).map(|i| (i % 251) as u8).collect()
        }
        _ => json(r#"{"id":"evt_1","type":2,"pad":""#.into(), r#""}"#),
    }
}

fn jwks() -> String {
    use rsa::traits::PublicKeyParts as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let public = rsa().rsa().unwrap().to_public_key();
    format!(
        r#"{{"keys":[{{"kty":"RSA","alg":"RS256","use":"sig","kid":"hookhost-test","n":"{}","e":"{}"}}]}}"#,
        b64.encode(public.n_bytes()),
        b64.encode(public.e_bytes())
    )
}

fn bench_schemes(c: &mut Criterion) {
    let keys = KeyCache::new(16, Duration::from_secs(u64::MAX / 4));
    keys.insert(SNS_CERT_URL, SNS_CERT.as_bytes().to_vec().into(), NOW);
    keys.insert(JWKS_URL, jwks().into_bytes().into(), NOW);
    let mut group = c.benchmark_group("verify");
    for &name in verify::scheme_names() {
        let (raw, key) = scheme(name);
        let scheme = verify::build(&raw, &SecretResolver::new(Path::new("."))).unwrap();
        for size in [1024usize, 64 * 1024] {
            let body = body(name, size);
            let uri: http::Uri = "https://hooks.example.com/hooks/bench".parse().unwrap();
            let mut out = Outgoing::new(&body, &uri, NOW);
            out.key = key.as_ref();
            let signed = scheme.sign_request(&out).unwrap();
            let mut headers = signed.headers;
            headers.insert("host", "hooks.example.com".parse().unwrap());
            let path: http::Uri = "/hooks/bench".parse().unwrap();
            let input = Input {
                keys: &keys,
                ..Input::post(&headers, &signed.body, &path, NOW)
            };
            scheme
                .verify(&input)
                .unwrap_or_else(|e| panic!("a signed `{name}` request verifies: {e}"));
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::new(name, size), &input, |b, input| {
                b.iter(|| scheme.verify(black_box(input)).unwrap());
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_schemes);
criterion_main!(benches);
