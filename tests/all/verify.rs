//! Signature verification through the real host: every scheme accepts what
//! its sender signs and answers 401 to tampered, unsigned, wrongly keyed and
//! stale requests. Requests are signed with the host's own signing code, the
//! same code `hookhost send` uses.

use std::path::Path;

use hookhost::secret::SecretResolver;
use hookhost::verify::{self, Outgoing, PrivateKey, RawVerify};
use hookhost_test_artifacts::GUEST_INSPECT;
use reqwest::StatusCode;

use crate::support::{KeyServer, TestHost, plugin_with, unix_now, with_headers};

// Both secrets are valid for every scheme (Standard Webhooks wants base64).
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW_SECRET: &str = "whsec_bmV3LXNlY3JldC1mb3ItaG9va2hvc3QtdGVzdHM=";
const WRONG_SECRET: &str = "whsec_d3Jvbmctc2VjcmV0LWZvci1ob29raG9zdC10ZXN0";

struct Scheme {
    name: &'static str,
    /// Extra `[verify]` lines beyond scheme and secret(s).
    extra: &'static str,
    /// Whether the scheme signs a timestamp (and so refuses stale requests).
    timestamped: bool,
    /// Body to sign (Twilio signs form parameters).
    body: &'static [u8],
}

const SCHEMES: &[Scheme] = &[
    Scheme {
        name: "github",
        extra: "",
        timestamped: false,
        body: br#"{"zen":"hi"}"#,
    },
    Scheme {
        name: "gitlab",
        extra: "",
        timestamped: false,
        body: br#"{"object_kind":"push"}"#,
    },
    Scheme {
        name: "stripe",
        extra: "",
        timestamped: true,
        body: br#"{"id":"evt_1","type":"charge.succeeded"}"#,
    },
    Scheme {
        name: "slack",
        extra: "",
        timestamped: true,
        body: b"token=x&team_id=T1&command=%2Fhook",
    },
    Scheme {
        name: "shopify",
        extra: "",
        timestamped: false,
        body: br#"{"id":820982911946154508}"#,
    },
    Scheme {
        name: "standard-webhooks",
        extra: "",
        timestamped: true,
        body: br#"{"type":"user.created"}"#,
    },
    Scheme {
        name: "token",
        extra: "",
        timestamped: false,
        body: br#"{"event":"build"}"#,
    },
    Scheme {
        name: "hmac",
        extra: "header = \"X-Signature\"\nalgorithm = \"sha1\"\nprefix = \"sha1=\"\n",
        timestamped: false,
        body: br#"{"event":"deploy"}"#,
    },
    Scheme {
        name: "twilio",
        extra: "",
        timestamped: false,
        body: b"CallSid=CA1&Digits=1234&From=%2B14158675309",
    },
];

/// Signs like the sender, with `secret`, as of `at`.
fn sign(scheme: &Scheme, secret: &str, url: &str, body: &[u8], at: i64) -> http::HeaderMap {
    let raw: RawVerify = toml::from_str(&format!(
        "scheme = \"{}\"\nsecret = \"{secret}\"\n{}",
        scheme.name, scheme.extra
    ))
    .unwrap();
    let signer = verify::build(&raw, &SecretResolver::new(Path::new("."))).unwrap();
    signer.sign(body, &url.parse().unwrap(), at).unwrap()
}

async fn start(scheme: &Scheme) -> TestHost {
    let manifest = format!(
        "route = \"/hooks/{name}\"\n[verify]\nscheme = \"{name}\"\nsecrets = [\"file:old.secret\", \"file:new.secret\"]\n{extra}",
        name = scheme.name,
        extra = scheme.extra
    );
    // `file:` secrets are read relative to the manifest's folder. The test
    // client is a trusted proxy: Twilio's URL is rebuilt from the
    // `X-Forwarded-Proto` it sends.
    TestHost::start_with(
        &[plugin_with(scheme.name, GUEST_INSPECT, &manifest)
            .with_file("old.secret", format!("{OLD_SECRET}\n"))
            .with_file("new.secret", NEW_SECRET)],
        |config| config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()],
    )
    .await
}

async fn post(
    host: &TestHost,
    path: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> reqwest::Response {
    let request = host
        .client
        .post(host.url(path))
        // Twilio rebuilds the signed URL from Host and X-Forwarded-Proto
        // (believed from a trusted proxy only: `start` trusts the client).
        .header("x-forwarded-proto", "http")
        // A new delivery id each time: the host answers a repeat of an id
        // that already succeeded as a duplicate, without the plugin. A
        // sender's own id header (e.g. a signed `webhook-id`) takes precedence.
        .header("idempotency-key", uuid::Uuid::now_v7().to_string())
        .body(body.to_vec());
    // Twilio's and Slack's bodies are forms; schemes that say what they
    // send (JSON, SNS's text/plain) keep their own content type.
    let request = match headers.contains_key(http::header::CONTENT_TYPE) {
        true => request,
        false => request.header("content-type", "application/x-www-form-urlencoded"),
    };
    with_headers(request, headers).send().await.unwrap()
}

/// `scheme`'s body as event number `n`: schemes that sign an event id in
/// the body (Stripe) dedupe by it, so another delivery needs another id.
fn another_event(scheme: &Scheme, n: i64) -> Vec<u8> {
    let body = String::from_utf8(scheme.body.to_vec()).unwrap();
    body.replace("evt_1", &format!("evt_{n}")).into_bytes()
}

async fn assert_refused(response: reqwest::Response, reason: &str, what: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    let body = crate::support::error_body(response).await;
    assert_eq!(body["error"], reason, "{what}: {body}");
}

#[tokio::test]
async fn every_scheme_accepts_signed_and_refuses_the_rest() {
    for scheme in SCHEMES {
        let host = start(scheme).await;
        let path = format!("/hooks/{}", scheme.name);
        let url = host.url(&path);
        let what = |case: &str| format!("{}: {case}", scheme.name);

        // Each a new delivery: a delivery id whose first call succeeded is
        // answered as a duplicate without running the plugin. Standard
        // Webhooks derives its message id from the timestamp; Stripe's is
        // the event id in the body, so each post is another event; the rest
        // get an `Idempotency-Key` from `post`.
        // Ages far apart, so the two ids differ even across a second boundary.
        for (age, secret) in [(0, NEW_SECRET), (120, OLD_SECRET)] {
            let body = another_event(scheme, age);
            let headers = sign(scheme, secret, &url, &body, unix_now() - age);
            let response = post(&host, &path, &headers, &body).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", what("signed"));
            let seen: serde_json::Value = response.json().await.unwrap();
            assert_eq!(seen["verified_by"], scheme.name, "{}", what("verified_by"));
        }

        let headers = sign(scheme, NEW_SECRET, &url, scheme.body, unix_now());
        let mut tampered = scheme.body.to_vec();
        tampered.extend_from_slice(b"&x=1");
        let tampered_result = post(&host, &path, &headers, &tampered).await;
        if matches!(scheme.name, "gitlab" | "token") {
            // These senders do not sign the body: a shared token only proves
            // who sent it.
            assert_eq!(
                tampered_result.status(),
                StatusCode::OK,
                "{}",
                what("token, other body")
            );
        } else {
            assert_refused(tampered_result, "bad signature", &what("tampered body")).await;
        }

        let headers = sign(scheme, WRONG_SECRET, &url, scheme.body, unix_now());
        let response = post(&host, &path, &headers, scheme.body).await;
        assert_refused(response, "bad signature", &what("wrong secret")).await;

        let response = post(&host, &path, &http::HeaderMap::new(), scheme.body).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{}",
            what("unsigned")
        );
        let body: serde_json::Value = response.json().await.unwrap();
        let reason = body["error"].as_str().unwrap();
        assert!(
            reason.starts_with("missing"),
            "{}: {reason}",
            what("unsigned")
        );

        if scheme.timestamped {
            let headers = sign(scheme, NEW_SECRET, &url, scheme.body, unix_now() - 15 * 60);
            let response = post(&host, &path, &headers, scheme.body).await;
            assert_refused(
                response,
                "timestamp outside tolerance",
                &what("15 minutes old"),
            )
            .await;
        }
        host.stop().await;
    }
}

#[tokio::test]
async fn githubs_published_vector_is_accepted_byte_for_byte() {
    // From GitHub's docs: secret "It's a Secret to Everybody", body "Hello, World!".
    let manifest = "[verify]\nscheme = \"github\"\nsecret = \"file:gh.secret\"\n";
    let host = TestHost::start(&[plugin_with("gh", GUEST_INSPECT, manifest)
        .with_file("gh.secret", "It's a Secret to Everybody\n")])
    .await;
    let response = host
        .client
        .post(host.url("/hooks/gh"))
        .header(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )
        .body("Hello, World!")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen: serde_json::Value = response.json().await.unwrap();
    assert_eq!(seen["verified_by"], "github");
    assert_eq!(seen["body_len"], 13);
    host.stop().await;
}

#[tokio::test]
async fn an_unresolvable_secret_keeps_the_plugin_out() {
    let manifest =
        "[verify]\nscheme = \"github\"\nsecret = \"env:HOOKHOST_TEST_SECRET_THAT_IS_NOT_SET\"\n";
    let host = TestHost::start(&[plugin_with("gh", GUEST_INSPECT, manifest)]).await;
    // Refused at load: the route does not exist rather than running unverified.
    assert_eq!(
        host.post("/hooks/gh", "{}").await.status(),
        StatusCode::NOT_FOUND
    );
    host.stop().await;
}

/// A queue-mode host for `scheme`: its dedupe is atomic with the append,
/// so a repeat is a duplicate at once (sync mode records a success just
/// after answering).
async fn start_queued(scheme: &Scheme) -> TestHost {
    let manifest = format!(
        "route = \"/hooks/{name}\"\nmode = \"queue\"\n[verify]\nscheme = \"{name}\"\nsecret = \"{NEW_SECRET}\"\n{extra}",
        name = scheme.name,
        extra = scheme.extra
    );
    TestHost::start(&[plugin_with(scheme.name, GUEST_INSPECT, &manifest)]).await
}

#[tokio::test]
async fn a_captured_stripe_request_resent_with_a_new_idempotency_key_is_a_duplicate() {
    let stripe = SCHEMES.iter().find(|s| s.name == "stripe").unwrap();
    let host = start_queued(stripe).await;
    let path = "/hooks/stripe";
    let body = br#"{"id":"evt_captured","object":"event","type":"charge.succeeded"}"#;
    let captured = sign(stripe, NEW_SECRET, &host.url(path), body, unix_now());

    // `post` adds a fresh `Idempotency-Key` each time: an unsigned header
    // that must not make the replay a new delivery.
    let first = post(&host, path, &captured, body).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let accepted: serde_json::Value = first.json().await.unwrap();
    assert_eq!(
        accepted["id"], "evt_captured",
        "the signed event id is the delivery id"
    );

    let replay = post(&host, path, &captured, body).await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.headers()["x-hookhost-delivery"], "evt_captured");
    let answer: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"id": "evt_captured", "duplicate": true}),
        "not queued again"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_signed_message_id_is_the_delivery_id_whatever_the_id_headers_say() {
    let scheme = SCHEMES
        .iter()
        .find(|s| s.name == "standard-webhooks")
        .unwrap();
    let host = start_queued(scheme).await;
    let path = "/hooks/standard-webhooks";
    let headers = sign(scheme, NEW_SECRET, &host.url(path), scheme.body, unix_now());
    let signed_id = headers["webhook-id"].to_str().unwrap().to_owned();
    for (forged, status) in [
        ("forged-1", StatusCode::ACCEPTED),
        ("forged-2", StatusCode::OK),
    ] {
        // `X-GitHub-Delivery` comes first among the id headers the host
        // reads; the signed `webhook-id` still wins.
        let response = with_headers(host.client.post(host.url(path)), &headers)
            .header("x-github-delivery", forged)
            .body(scheme.body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{forged}");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["id"], signed_id.as_str(), "{answer}");
    }
    host.stop().await;
}

#[tokio::test]
async fn a_byte_identical_replay_of_a_scheme_without_a_signed_id_is_refused() {
    // Slack signs a timestamp but no message id: the replay cache catches
    // a replay within the window, whatever id header it carries.
    let slack = SCHEMES.iter().find(|s| s.name == "slack").unwrap();
    let host = start(slack).await;
    let path = "/hooks/slack";
    let captured = sign(slack, NEW_SECRET, &host.url(path), slack.body, unix_now());
    let first = post(&host, path, &captured, slack.body).await;
    assert_eq!(first.status(), StatusCode::OK);
    let replay = post(&host, path, &captured, slack.body).await;
    assert_refused(replay, "replayed", "slack replay").await;

    // A new signature (the sender's next request) is not a replay.
    let next = sign(
        slack,
        NEW_SECRET,
        &host.url(path),
        slack.body,
        unix_now() - 30,
    );
    assert_eq!(
        post(&host, path, &next, slack.body).await.status(),
        StatusCode::OK
    );
    host.stop().await;
}

#[tokio::test]
async fn twilio_believes_forwarded_proto_only_from_a_trusted_proxy() {
    let twilio = SCHEMES.iter().find(|s| s.name == "twilio").unwrap();
    let manifest = format!(
        "route = \"/hooks/twilio\"\n[verify]\nscheme = \"twilio\"\nsecret = \"{NEW_SECRET}\"\n"
    );
    for (trusted, expected) in [(false, StatusCode::UNAUTHORIZED), (true, StatusCode::OK)] {
        let host = TestHost::start_with(
            &[plugin_with("twilio", GUEST_INSPECT, &manifest)],
            |config| {
                if trusted {
                    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
                }
            },
        )
        .await;
        // Signed for the plain-HTTP URL the proxy header claims; without a
        // trusted proxy the host rebuilds `https://…` and it cannot match.
        let headers = sign(
            twilio,
            NEW_SECRET,
            &host.url("/hooks/twilio"),
            twilio.body,
            unix_now(),
        );
        let response = post(&host, "/hooks/twilio", &headers, twilio.body).await;
        assert_eq!(response.status(), expected, "trusted proxy: {trusted}");
        host.stop().await;
    }
}

/// Twilio's public URL in these tests, as the sender signs it.
const TWILIO_PUBLIC: &str = "https://public.example.com/hooks/twilio";

/// A form POST to `host`'s Twilio route with `headers` added.
async fn twilio_post(
    host: &TestHost,
    signed: &http::HeaderMap,
    headers: &[(&str, &str)],
    body: &[u8],
) -> StatusCode {
    let mut request = host
        .client
        .post(host.url("/hooks/twilio"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    with_headers(request, signed).send().await.unwrap().status()
}

#[tokio::test]
async fn twilio_checks_the_host_header_and_believes_forwarded_host_only_from_a_trusted_proxy() {
    let twilio = SCHEMES.iter().find(|s| s.name == "twilio").unwrap();
    let manifest = format!(
        "route = \"/hooks/twilio\"\n[verify]\nscheme = \"twilio\"\nsecret = \"{NEW_SECRET}\"\n"
    );
    let signed = sign(twilio, NEW_SECRET, TWILIO_PUBLIC, twilio.body, unix_now());
    for trusted in [false, true] {
        let host = TestHost::start_with(
            &[plugin_with("twilio", GUEST_INSPECT, &manifest)],
            |config| {
                if trusted {
                    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
                }
            },
        )
        .await;
        let what = format!("trusted proxy: {trusted}");
        // Twilio calling directly: the URL is its `Host` (https, as no
        // trusted proxy says otherwise).
        let direct = [("host", "public.example.com")];
        assert_eq!(
            twilio_post(&host, &signed, &direct, twilio.body).await,
            StatusCode::OK,
            "{what}"
        );
        // The same signature sent to another host name is for another URL.
        let elsewhere = [("host", "other.example.com")];
        assert_eq!(
            twilio_post(&host, &signed, &elsewhere, twilio.body).await,
            StatusCode::UNAUTHORIZED,
            "{what}"
        );
        // Through a proxy that rewrote `Host`: the public host is in
        // `X-Forwarded-Host`, believed from a trusted proxy only.
        let proxied = [
            ("host", "backend.internal:8080"),
            ("x-forwarded-host", "public.example.com"),
            ("x-forwarded-proto", "https"),
        ];
        let expected = match trusted {
            true => StatusCode::OK,
            false => StatusCode::UNAUTHORIZED,
        };
        assert_eq!(
            twilio_post(&host, &signed, &proxied, twilio.body).await,
            expected,
            "{what}"
        );
        host.stop().await;
    }
}

#[tokio::test]
async fn twilio_signs_repeated_form_pairs_and_refuses_one_added_or_dropped() {
    let twilio = Scheme {
        name: "twilio",
        extra: "url = \"https://public.example.com/hooks/twilio\"\n",
        timestamped: false,
        body: b"",
    };
    let manifest = format!(
        "route = \"/hooks/twilio\"\n[verify]\nscheme = \"twilio\"\nsecret = \"{NEW_SECRET}\"\n{}",
        twilio.extra
    );
    let host = TestHost::start(&[plugin_with("twilio", GUEST_INSPECT, &manifest)]).await;
    let repeated: &[u8] = b"MediaUrl0=a&Digits=1&Digits=1&From=%2B14158675309&MediaUrl0=b";
    let signed = |body: &[u8]| sign(&twilio, NEW_SECRET, TWILIO_PUBLIC, body, unix_now());

    assert_eq!(
        twilio_post(&host, &signed(repeated), &[], repeated).await,
        StatusCode::OK,
        "every pair, repeats included, as signed"
    );
    let cases: [(&[u8], &[u8]); 3] = [
        // A value added under a name the sender used once.
        (
            &b"Digits=1&From=%2B14158675309"[..],
            &b"Digits=1&Digits=2&From=%2B14158675309"[..],
        ),
        // A repeated pair dropped, or repeated once more.
        (
            repeated,
            b"MediaUrl0=a&Digits=1&From=%2B14158675309&MediaUrl0=b",
        ),
        (
            repeated,
            b"MediaUrl0=a&Digits=1&Digits=1&Digits=1&From=%2B14158675309&MediaUrl0=b",
        ),
    ];
    for (signed_body, sent) in cases {
        assert_eq!(
            twilio_post(&host, &signed(signed_body), &[], sent).await,
            StatusCode::UNAUTHORIZED,
            "signed {:?}, sent {:?}",
            String::from_utf8_lossy(signed_body),
            String::from_utf8_lossy(sent)
        );
    }
    host.stop().await;
}

// Issue 18's schemes, and the two variants of older ones it added
// (Standard Webhooks `v1a`, the `hmac` template): one row each, through
// the same cases, with key pairs where the sender signs with one and the
// key server where the host fetches the sender's keys.

/// The shared secret of the rows that have one.
const SECRET: &str = "row-secret-for-the-tests";
/// A secret the manifest does not hold.
const WRONG: &str = "not-the-configured-secret";
/// RSA keys: the one `sns-test-cert.pem` and the served JWKS vouch for, and
/// another.
const RSA_KEY: &str = include_str!("../../host/src/verify/testdata/sns-test-key.pem");
const RSA_OTHER_KEY: &str = include_str!("../../host/src/verify/testdata/rsa-other-key.pem");
const SNS_CERT: &str = include_str!("../../host/src/verify/testdata/sns-test-cert.pem");
/// Where the key server serves the JWKS.
const JWKS_PATH: &str = "/oauth2/v3/certs";
const PUBSUB_AUDIENCE: &str = "https://hooks.example.com/hooks/pubsub";

/// How a row's sender signs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    /// A shared secret (`secret = …` in the manifest).
    Secret,
    Ed25519,
    P256,
    /// RSA, with the public half fetched by the host (SNS certificate, JWKS).
    Rsa,
}

impl Key {
    /// The sender's private key: the one the manifest's public key (or the
    /// served certificate/JWKS) belongs to, or another.
    fn private(self, right: bool) -> Option<PrivateKey> {
        let seed = if right { [7u8; 32] } else { [9u8; 32] };
        Some(match self {
            Key::Secret => return None,
            Key::Ed25519 => PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)),
            Key::P256 => PrivateKey::P256(p256::ecdsa::SigningKey::from_slice(&seed).unwrap()),
            Key::Rsa => PrivateKey::from_pem(if right { RSA_KEY } else { RSA_OTHER_KEY }).unwrap(),
        })
    }
}

/// What a row's manifest and bodies are made from.
struct Ctx<'a> {
    /// The sender's shared secret (the manifest's, or [`WRONG`]).
    secret: &'a str,
    /// The right public key, as the manifest writes it.
    public_key: &'a str,
    /// Serves the SNS certificate and the JWKS.
    keys: &'a KeyServer,
}

struct Row {
    /// The scheme, or the scheme and the variant the row covers.
    label: &'static str,
    scheme: &'static str,
    key: Key,
    /// The `[verify]` lines after `scheme`.
    verify: fn(&Ctx<'_>) -> String,
    /// Delivery number `n` as signed at `at`: each a new event (schemes
    /// that sign an id dedupe by it), with the word `xyzzy` for [`hack`].
    body: fn(&Ctx<'_>, i64, i64) -> Vec<u8>,
    /// Ages (seconds) of two deliveries that must be accepted.
    ages: [i64; 2],
    /// A signed request changed on the way, and the refusal reason; `None`
    /// where the sender signs no body (it is delivered).
    tamper: fn(&[u8]) -> Vec<u8>,
    tampered: Option<&'static str>,
    /// Whether the signature travels in headers, so that a request without
    /// them is refused `missing …`.
    headers_signed: bool,
    /// An age the scheme's window refuses, and the reason.
    stale: Option<(i64, &'static str)>,
}

const STALE: Option<(i64, &str)> = Some((15 * 60, "timestamp outside tolerance"));

/// The signed body with its one `xyzzy` written `xyzzY`.
fn hack(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(text.matches("xyzzy").count(), 1, "{text}");
    text.replace("xyzzy", "xyzzY").into_bytes()
}

fn text(s: String) -> Vec<u8> {
    s.into_bytes()
}

const ROWS: &[Row] = &[
    Row {
        label: "discord",
        scheme: "discord",
        key: Key::Ed25519,
        verify: |c| format!("public_key = \"{}\"\n", c.public_key),
        body: |_, n, _| {
            text(format!(
                r#"{{"id":"{n}","type":2,"data":{{"name":"xyzzy"}}}}"#
            ))
        },
        ages: [0, 60],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: true,
        stale: STALE,
    },
    Row {
        label: "twitch",
        scheme: "twitch",
        key: Key::Secret,
        verify: |c| format!("secret = \"{}\"\n", c.secret),
        body: |_, n, _| {
            text(format!(
                r#"{{"subscription":{{"type":"channel.follow","version":"2"}},"event":{{"user_id":"{n}","user_name":"xyzzy"}}}}"#
            ))
        },
        ages: [0, 120],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: true,
        stale: STALE,
    },
    Row {
        label: "zoom",
        scheme: "zoom",
        key: Key::Secret,
        verify: |c| format!("secret = \"{}\"\n", c.secret),
        body: |_, n, at| {
            text(format!(
                r#"{{"event":"meeting.started","event_ts":{at}000,"payload":{{"id":{n},"topic":"xyzzy"}}}}"#
            ))
        },
        ages: [0, 60],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: true,
        stale: STALE,
    },
    Row {
        label: "meta",
        scheme: "meta",
        key: Key::Secret,
        verify: |c| {
            format!(
                "secret = \"{}\"\nverify_token = \"meta-verify-token\"\n",
                c.secret
            )
        },
        body: |_, n, _| {
            text(format!(
                r#"{{"object":"page","entry":[{{"id":"{n}","changes":[{{"field":"feed","value":"xyzzy"}}]}}]}}"#
            ))
        },
        ages: [0, 60],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: true,
        stale: None,
    },
    Row {
        label: "graph",
        scheme: "graph",
        key: Key::Secret,
        verify: |c| format!("secret = \"{}\"\n", c.secret),
        // Graph signs nothing: the secret is the `clientState` it echoes.
        body: |c, n, _| {
            text(format!(
                r#"{{"value":[{{"subscriptionId":"{n}","clientState":"{}","changeType":"created","resource":"xyzzy"}}]}}"#,
                c.secret
            ))
        },
        ages: [0, 60],
        tamper: hack,
        tampered: None,
        headers_signed: false,
        stale: None,
    },
    Row {
        label: "sendgrid",
        scheme: "sendgrid",
        key: Key::P256,
        verify: |c| format!("public_key = \"{}\"\n", c.public_key),
        body: |_, n, _| {
            text(format!(
                r#"[{{"email":"a@example.com","event":"delivered","sg_event_id":"{n}","note":"xyzzy"}}]"#
            ))
        },
        ages: [0, 60],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: true,
        stale: STALE,
    },
    Row {
        label: "square",
        scheme: "square",
        key: Key::Secret,
        verify: |c| {
            format!(
                "secret = \"{}\"\nurl = \"https://example.com/hooks/square\"\n",
                c.secret
            )
        },
        body: |_, n, _| {
            text(format!(
                r#"{{"merchant_id":"M1","type":"payment.updated","event_id":"evt-{n}","data":{{"note":"xyzzy"}}}}"#
            ))
        },
        ages: [0, 60],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: true,
        stale: None,
    },
    Row {
        label: "hubspot",
        scheme: "hubspot",
        key: Key::Secret,
        verify: |c| {
            format!(
                "secret = \"{}\"\nurl = \"https://example.com/hooks/hubspot\"\n",
                c.secret
            )
        },
        body: |_, n, _| {
            text(format!(
                r#"[{{"eventId":{n},"subscriptionType":"contact.creation","note":"xyzzy"}}]"#
            ))
        },
        ages: [0, 60],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: true,
        stale: STALE,
    },
    Row {
        label: "linear",
        scheme: "linear",
        key: Key::Secret,
        verify: |c| format!("secret = \"{}\"\n", c.secret),
        // The send time is inside the signed body; the window is a minute.
        body: |_, n, at| {
            text(format!(
                r#"{{"action":"create","type":"Issue","data":{{"id":"{n}","title":"xyzzy"}},"webhookTimestamp":{at}000}}"#
            ))
        },
        ages: [0, 30],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: true,
        stale: STALE,
    },
    Row {
        label: "paddle",
        scheme: "paddle",
        key: Key::Secret,
        verify: |c| format!("secret = \"{}\"\n", c.secret),
        body: |_, n, _| {
            text(format!(
                r#"{{"event_id":"evt_{n}","event_type":"transaction.paid","data":{{"note":"xyzzy"}}}}"#
            ))
        },
        // Paddle's SDK allows 5 seconds.
        ages: [0, 2],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: true,
        stale: STALE,
    },
    Row {
        label: "mailgun",
        scheme: "mailgun",
        key: Key::Secret,
        verify: |c| format!("secret = \"{}\"\n", c.secret),
        // The event; `sign_request` wraps it with the signature object.
        body: |_, n, _| {
            text(format!(
                r#"{{"event":"delivered","id":"{n}","message":"xyzzy"}}"#
            ))
        },
        ages: [0, 60],
        // Mailgun signs its timestamp and token, not the event.
        tamper: |body| {
            let mut envelope: serde_json::Value = serde_json::from_slice(body).unwrap();
            envelope["signature"]["token"] = "0".repeat(50).into();
            envelope.to_string().into_bytes()
        },
        tampered: Some("bad signature"),
        headers_signed: false,
        stale: STALE,
    },
    Row {
        label: "sns",
        scheme: "sns",
        key: Key::Rsa,
        verify: |c| format!("cert_hosts = [\"{}\"]\n", c.keys.addr),
        // The `Message`; `sign_request` writes the SNS envelope around it.
        body: |_, n, _| text(format!("xyzzy {n}")),
        ages: [0, 60],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: false,
        stale: None,
    },
    Row {
        label: "pubsub",
        scheme: "pubsub",
        key: Key::Rsa,
        verify: |c| {
            format!(
                "audience = \"{PUBSUB_AUDIENCE}\"\njwks_url = \"{}\"\n",
                c.keys.url(JWKS_PATH)
            )
        },
        body: |_, n, _| {
            text(format!(
                r#"{{"message":{{"data":"aG9vaw==","messageId":"{n}","attributes":{{"note":"xyzzy"}}}},"subscription":"projects/p/subscriptions/s"}}"#
            ))
        },
        ages: [0, 60],
        // The token authenticates the sender; Pub/Sub signs no body.
        tamper: hack,
        tampered: None,
        headers_signed: true,
        // Tokens live an hour (60 s leeway); this one expired an hour ago.
        stale: Some((2 * 3600, "bad token claim")),
    },
    Row {
        label: "standard-webhooks-v1a",
        scheme: "standard-webhooks",
        key: Key::Ed25519,
        verify: |c| format!("public_key = \"{}\"\n", c.public_key),
        body: |_, n, _| {
            text(format!(
                r#"{{"type":"user.created","data":{{"id":"{n}","name":"xyzzy"}}}}"#
            ))
        },
        ages: [0, 60],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: true,
        stale: STALE,
    },
    Row {
        label: "hmac-template",
        scheme: "hmac",
        key: Key::Secret,
        verify: |c| {
            format!(
                "secret = \"{}\"\nheader = \"X-Signature\"\nprefix = \"sha256=\"\n\
                 template = \"{{timestamp}}.{{body}}\"\ntimestamp_header = \"X-Timestamp\"\n",
                c.secret
            )
        },
        body: |_, n, _| text(format!(r#"{{"event":"deploy","id":"{n}","note":"xyzzy"}}"#)),
        ages: [0, 60],
        tamper: hack,
        tampered: Some("bad signature"),
        headers_signed: true,
        stale: STALE,
    },
];

/// A JWKS holding the public half of each `(kid, key)`, as Google serves it.
fn jwks(keys: &[(&str, &PrivateKey)]) -> String {
    use base64::Engine as _;
    use rsa::traits::PublicKeyParts as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|(kid, key)| {
            let public = key.rsa().unwrap().to_public_key();
            serde_json::json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                "n": b64.encode(public.n_bytes()), "e": b64.encode(public.e_bytes()),
            })
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// A key server with the SNS test certificate and a JWKS of the same RSA
/// key (kid `hookhost-test`, the one `sign_request` names).
async fn key_server() -> KeyServer {
    let server = KeyServer::start().await;
    server.answer(verify::TEST_CERT_PATH, 200, SNS_CERT);
    let key = PrivateKey::from_pem(RSA_KEY).unwrap();
    server.answer(JWKS_PATH, 200, jwks(&[(verify::TEST_KID, &key)]));
    server
}

/// The manifest's public key for `row` (empty for secrets and fetched keys).
fn public_key(row: &Row) -> String {
    match row.key {
        Key::Ed25519 | Key::P256 => {
            hookhost::send::public_key(row.scheme, &row.key.private(true).unwrap()).unwrap()
        }
        Key::Secret | Key::Rsa => String::new(),
    }
}

/// The scheme `row` builds from `ctx`, as manifest and sender both do.
fn row_scheme(row: &Row, ctx: &Ctx<'_>) -> std::sync::Arc<dyn verify::Scheme> {
    let table = format!("scheme = \"{}\"\n{}", row.scheme, (row.verify)(ctx));
    let raw: RawVerify = toml::from_str(&table).unwrap_or_else(|e| panic!("{table}: {e}"));
    verify::build(&raw, &SecretResolver::new(Path::new(".")))
        .unwrap_or_else(|e| panic!("{}: {e}", row.label))
}

/// Delivery `n` of `row` to `url` as its sender signs it at `at`, with the
/// right or the wrong secret or private key: headers and body.
fn row_signed(
    row: &Row,
    keys: &KeyServer,
    right: bool,
    url: &str,
    n: i64,
    at: i64,
) -> (http::HeaderMap, Vec<u8>) {
    let public_key = public_key(row);
    let ctx = Ctx {
        secret: if right { SECRET } else { WRONG },
        public_key: &public_key,
        keys,
    };
    let scheme = row_scheme(row, &ctx);
    let body = (row.body)(&ctx, n, at);
    let uri: http::Uri = url.parse().unwrap();
    let key = row.key.private(right);
    let mut out = Outgoing::new(&body, &uri, at);
    if let Some(key) = &key {
        out = out.with_key(key);
    }
    let signed = scheme
        .sign_request(&out)
        .unwrap_or_else(|e| panic!("{}: {e}", row.label));
    (signed.headers, signed.body.to_vec())
}

/// `plugin`'s delivery counts on the admin API, once they read `ok` and
/// `refused` (sync mode counts a success just after answering); every other
/// outcome must be 0.
async fn assert_deliveries(host: &TestHost, plugin: &str, ok: u64, refused: u64) {
    let deliveries = crate::support::eventually(
        std::time::Duration::from_secs(5),
        &format!("{plugin}: {ok} ok, {refused} refused"),
        || async {
            let (_, plugins) = host.admin_get("/plugins").await;
            let deliveries = plugins["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == plugin)
                .unwrap()["deliveries"]
                .clone();
            (deliveries["ok"] == ok && deliveries["refused"] == refused).then_some(deliveries)
        },
    )
    .await;
    for (outcome, count) in deliveries.as_object().unwrap() {
        if outcome != "ok" && outcome != "refused" {
            assert_eq!(count, 0, "{plugin}: {deliveries}");
        }
    }
}

#[test]
fn every_scheme_name_goes_through_the_host_in_a_table() {
    // A scheme added to `scheme_names` without a row fails here.
    for name in verify::scheme_names() {
        assert!(
            SCHEMES.iter().any(|s| s.name == *name) || ROWS.iter().any(|r| r.scheme == *name),
            "scheme `{name}` has no row in SCHEMES or ROWS (tests/all/verify.rs)"
        );
    }
}

#[tokio::test]
async fn every_new_scheme_accepts_signed_and_refuses_the_rest() {
    let keys = key_server().await;
    for row in ROWS {
        let public_key = public_key(row);
        let ctx = Ctx {
            secret: SECRET,
            public_key: &public_key,
            keys: &keys,
        };
        let manifest = format!(
            "route = \"/hooks/{label}\"\n[verify]\nscheme = \"{scheme}\"\n{lines}",
            label = row.label,
            scheme = row.scheme,
            lines = (row.verify)(&ctx)
        );
        let host = TestHost::start_with_admin(
            &[plugin_with(row.label, GUEST_INSPECT, &manifest)],
            |config| config.verify_ca = Some(keys.ca.clone()),
        )
        .await;
        let path = format!("/hooks/{}", row.label);
        let url = host.url(&path);
        let what = |case: &str| format!("{}: {case}", row.label);
        let (mut ok, mut refused) = (0, 0);

        for (n, age) in row.ages.into_iter().enumerate() {
            let (headers, body) = row_signed(row, &keys, true, &url, n as i64, unix_now() - age);
            let response = post(&host, &path, &headers, &body).await;
            let status = response.status();
            let text = response.text().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{}: {text}", what("signed"));
            let seen: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(seen["verified_by"], row.scheme, "{}", what("verified_by"));
            ok += 1;
        }

        let (headers, body) = row_signed(row, &keys, true, &url, 10, unix_now());
        let response = post(&host, &path, &headers, &(row.tamper)(&body)).await;
        match row.tampered {
            Some(reason) => {
                assert_refused(response, reason, &what("tampered")).await;
                refused += 1;
            }
            None => {
                assert_eq!(
                    response.status(),
                    StatusCode::OK,
                    "{}",
                    what("unsigned body")
                );
                ok += 1;
            }
        }

        let (headers, body) = row_signed(row, &keys, false, &url, 11, unix_now());
        let response = post(&host, &path, &headers, &body).await;
        assert_refused(response, "bad signature", &what("wrong secret or key")).await;
        refused += 1;

        if row.headers_signed {
            let (_, body) = row_signed(row, &keys, true, &url, 12, unix_now());
            let response = post(&host, &path, &http::HeaderMap::new(), &body).await;
            let body = crate::support::error_body(response).await;
            let reason = body["error"].as_str().unwrap();
            assert!(
                reason.starts_with("missing"),
                "{}: {body}",
                what("unsigned")
            );
            refused += 1;
        }

        if let Some((age, reason)) = row.stale {
            let (headers, body) = row_signed(row, &keys, true, &url, 13, unix_now() - age);
            let response = post(&host, &path, &headers, &body).await;
            assert_refused(response, reason, &what("stale")).await;
            refused += 1;
        }

        // Refused requests never reached the plugin.
        assert_deliveries(&host, row.label, ok, refused).await;
        host.stop().await;
    }
}

// Keys the host fetches (SNS certificates, the Pub/Sub JWKS), from the
// HTTPS key server on 127.0.0.1 that `--verify-ca` makes the host trust.

/// A Pub/Sub push token for [`PUBSUB_AUDIENCE`], signed at `now` with `key`
/// under `kid`, as Google mints them: the `Authorization` header.
fn pubsub_token(kid: &str, key: &PrivateKey, now: i64) -> http::HeaderMap {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    let der = key.rsa().unwrap().to_pkcs1_der().unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.into());
    let claims = serde_json::json!({
        "aud": PUBSUB_AUDIENCE, "iss": "https://accounts.google.com",
        "iat": now, "exp": now + 3600,
        "email": "pusher@project.iam.gserviceaccount.com", "email_verified": true,
    });
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
    )
    .unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    headers
}

const PUSH_BODY: &[u8] =
    br#"{"message":{"data":"aG9vaw==","messageId":"1"},"subscription":"projects/p/subscriptions/s"}"#;

/// The `[verify]` table of a Pub/Sub route whose JWKS `keys` serves.
fn pubsub_table(keys: &KeyServer) -> String {
    format!(
        "[verify]\nscheme = \"pubsub\"\naudience = \"{PUBSUB_AUDIENCE}\"\njwks_url = \"{}\"\n",
        keys.url(JWKS_PATH)
    )
}

/// The `[verify]` table of an SNS route trusting `keys`'s host and port.
fn sns_table(keys: &KeyServer, confirm: bool) -> String {
    format!(
        "[verify]\nscheme = \"sns\"\ncert_hosts = [\"{}\"]\n{}",
        keys.addr,
        if confirm { "confirm = true\n" } else { "" }
    )
}

/// An SNS message (`handshake` or a notification of `message`) for a
/// route with `table`, signed with the test key at `now`.
fn sns_message(
    table: &str,
    message: &str,
    handshake: Option<&str>,
    now: i64,
) -> (http::HeaderMap, Vec<u8>) {
    let raw: RawVerify = toml::from_str(table.trim_start_matches("[verify]\n")).unwrap();
    let scheme = verify::build(&raw, &SecretResolver::new(Path::new("."))).unwrap();
    let key = PrivateKey::from_pem(RSA_KEY).unwrap();
    let uri: http::Uri = "https://hooks.example.com/hooks/sns".parse().unwrap();
    let mut out = Outgoing::new(message.as_bytes(), &uri, now).with_key(&key);
    out.handshake = handshake;
    let signed = scheme.sign_request(&out).unwrap();
    (signed.headers, signed.body.to_vec())
}

#[tokio::test]
async fn an_sns_certificate_is_fetched_once_and_a_subscription_is_confirmed_only_when_asked() {
    let keys = key_server().await;
    keys.answer("/", 200, "<ConfirmSubscriptionResponse/>");
    let (confirming, silent) = (sns_table(&keys, true), sns_table(&keys, false));
    let host = TestHost::start_with_admin(
        &[
            plugin_with(
                "confirming",
                GUEST_INSPECT,
                &format!("route = \"/hooks/confirming\"\n{confirming}"),
            ),
            plugin_with(
                "silent",
                GUEST_INSPECT,
                &format!("route = \"/hooks/silent\"\n{silent}"),
            ),
        ],
        |config| config.verify_ca = Some(keys.ca.clone()),
    )
    .await;

    // Three notifications on two routes naming one certificate URL: one
    // fetch, then the shared cache.
    for (n, (route, table)) in [
        ("/hooks/confirming", &confirming),
        ("/hooks/confirming", &confirming),
        ("/hooks/silent", &silent),
    ]
    .into_iter()
    .enumerate()
    {
        let (headers, body) = sns_message(table, &format!("event {n}"), None, unix_now());
        let response = post(&host, route, &headers, &body).await;
        assert_eq!(response.status(), StatusCode::OK, "{route} {n}");
        let seen: serde_json::Value = response.json().await.unwrap();
        assert_eq!(seen["verified_by"], "sns");
    }
    assert_eq!(
        keys.count(verify::TEST_CERT_PATH),
        1,
        "fetched once: {:?}",
        keys.requests()
    );

    // `confirm = true`: answered 200, and the host GETs the SubscribeURL.
    let confirmation = Some("sns-subscription-confirmation");
    let (headers, body) = sns_message(&confirming, "", confirmation, unix_now());
    let response = post(&host, "/hooks/confirming", &headers, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let confirmed: Vec<String> = keys
        .requests()
        .into_iter()
        .filter(|target| target.starts_with("/?Action=ConfirmSubscription"))
        .collect();
    assert_eq!(confirmed.len(), 1, "{:?}", keys.requests());
    assert!(
        confirmed[0].contains("&Token=2336412f37fb687f5d51e6e2425"),
        "{confirmed:?}"
    );

    // Without `confirm`: answered 200, nothing fetched.
    let (headers, body) = sns_message(&silent, "", confirmation, unix_now());
    let response = post(&host, "/hooks/silent", &headers, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(keys.count("/"), 1, "{:?}", keys.requests());
    assert_eq!(keys.count(verify::TEST_CERT_PATH), 1);

    // Neither confirmation reached a plugin.
    assert_deliveries(&host, "confirming", 2, 0).await;
    assert_deliveries(&host, "silent", 1, 0).await;
    host.stop().await;
}

#[tokio::test]
async fn a_pubsub_jwks_is_cached_and_refreshed_once_for_an_unknown_kid() {
    let keys = key_server().await;
    let manifest = format!("route = \"/hooks/push\"\n{}", pubsub_table(&keys));
    let host =
        TestHost::start_with_admin(&[plugin_with("push", GUEST_INSPECT, &manifest)], |config| {
            config.verify_ca = Some(keys.ca.clone())
        })
        .await;
    let (old, new) = (
        PrivateKey::from_pem(RSA_KEY).unwrap(),
        PrivateKey::from_pem(RSA_OTHER_KEY).unwrap(),
    );
    let push = |headers: http::HeaderMap| {
        let host = &host;
        async move { post(host, "/hooks/push", &headers, PUSH_BODY).await }
    };

    let first_fetch = std::time::Instant::now();
    for _ in 0..2 {
        let response = push(pubsub_token(verify::TEST_KID, &old, unix_now())).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(keys.count(JWKS_PATH), 1, "fetched once, then cached");

    // Google rotates: the new key's `kid` is not in the cached set. Within
    // REFETCH_AFTER of the last fetch the set is not fetched again (a flood
    // of made-up `kid`s costs one fetch per interval), so it is refused.
    keys.answer(
        JWKS_PATH,
        200,
        jwks(&[(verify::TEST_KID, &old), ("rotated", &new)]),
    );
    let response = push(pubsub_token("rotated", &new, unix_now())).await;
    assert_refused(response, "key unavailable", "unknown kid, just fetched").await;
    assert_eq!(keys.count(JWKS_PATH), 1);

    // After it, the unknown `kid` triggers one refresh, which finds it.
    tokio::time::sleep_until(
        (first_fetch + hookhost::server::REFETCH_AFTER + std::time::Duration::from_millis(500))
            .into(),
    )
    .await;
    let response = push(pubsub_token("rotated", &new, unix_now())).await;
    assert_eq!(response.status(), StatusCode::OK, "refreshed");
    assert_eq!(keys.count(JWKS_PATH), 2);
    for headers in [
        pubsub_token("rotated", &new, unix_now()),
        pubsub_token(verify::TEST_KID, &old, unix_now()),
    ] {
        assert_eq!(push(headers).await.status(), StatusCode::OK);
    }
    let response = push(pubsub_token("nobody", &new, unix_now())).await;
    assert_refused(response, "key unavailable", "kid in no set").await;
    assert_eq!(keys.count(JWKS_PATH), 2, "one refresh per interval");
    assert_deliveries(&host, "push", 5, 2).await;
    host.stop().await;
}

#[tokio::test]
async fn a_key_fetch_that_fails_is_503_with_retry_after_and_stores_nothing() {
    let mut keys = KeyServer::start().await;
    keys.answer(JWKS_PATH, 500, "");
    let sns = sns_table(&keys, false);
    let host = TestHost::start_with_admin(
        &[
            plugin_with(
                "push",
                GUEST_INSPECT,
                &format!(
                    "route = \"/hooks/push\"\nmode = \"queue\"\n{}",
                    pubsub_table(&keys)
                ),
            ),
            plugin_with(
                "sns",
                GUEST_INSPECT,
                &format!("route = \"/hooks/sns\"\nmode = \"queue\"\n{sns}"),
            ),
        ],
        |config| config.verify_ca = Some(keys.ca.clone()),
    )
    .await;
    let key = PrivateKey::from_pem(RSA_KEY).unwrap();
    let assert_retry = |response: reqwest::Response, what: &'static str| async move {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
        assert_eq!(response.headers()["retry-after"], "1", "{what}");
        crate::support::error_body(response).await;
    };

    // The JWKS host answers 500: the sender is told to retry, not refused.
    let token = pubsub_token(verify::TEST_KID, &key, unix_now());
    assert_retry(post(&host, "/hooks/push", &token, PUSH_BODY).await, "500").await;
    assert_eq!(keys.count(JWKS_PATH), 1);

    // A failed fetch is not remembered as recent: once the JWKS is served,
    // the sender's retry fetches it and is accepted.
    keys.answer(JWKS_PATH, 200, jwks(&[(verify::TEST_KID, &key)]));
    let response = post(&host, "/hooks/push", &token, PUSH_BODY).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(keys.count(JWKS_PATH), 2);

    // The certificate host is down.
    keys.stop().await;
    let (headers, body) = sns_message(&sns, "hello", None, unix_now());
    assert_retry(post(&host, "/hooks/sns", &headers, &body).await, "down").await;

    // Only the accepted push was stored; nothing was refused.
    let (_, events) = host.admin_get("/events").await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["route"], "/hooks/push");
    assert_deliveries(&host, "sns", 0, 0).await;
    assert_deliveries(&host, "push", 1, 0).await;
    host.stop().await;
}
