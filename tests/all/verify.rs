//! Signature verification through the real host: every scheme accepts what
//! its sender signs and answers 401 to tampered, unsigned, wrongly keyed and
//! stale requests. Requests are signed with the host's own signing code, the
//! same code `hookhost send` uses.

use std::path::Path;

use hookhost::secret::SecretResolver;
use hookhost::verify::{self, RawVerify};
use hookhost_test_artifacts::GUEST_INSPECT;
use reqwest::StatusCode;

use crate::support::{TestHost, plugin_with, unix_now, with_headers};

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
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_vec());
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
