//! Conformance with the providers' own Node SDKs: each test signs with our
//! [`Scheme::sign_request`] and verifies with the SDK, or signs with the
//! SDK and verifies with our scheme. The SDKs run through
//! `tests/sdk/sdk.mjs` from the repository's `node_modules` (`make
//! js-tools`, which `make test` runs); a missing SDK fails the test rather
//! than skipping it. The SDKs check timestamps against the wall clock, so
//! these tests sign at the real time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::Uri;
use serde_json::{Value, json};

use super::testutil::{self, verify_at};
use super::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Runs one SDK operation; panics with the fix when the SDK is missing.
fn sdk(package: &str, request: Value) -> Value {
    let root = root();
    assert!(
        root.join("node_modules").join(package).is_dir(),
        "the `{package}` SDK is not installed in {}/node_modules: run `make js-tools` (or `npm install`)",
        root.display()
    );
    let output = Command::new("node")
        .arg(root.join("tests/sdk/sdk.mjs"))
        .arg(request.to_string())
        .current_dir(&root)
        .output()
        .expect("node runs (Node.js 20 or later is needed, as for the JS plugins)");
    assert!(
        output.status.success(),
        "tests/sdk/sdk.mjs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("sdk.mjs prints JSON")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

fn uri() -> Uri {
    testutil::URI.parse().unwrap()
}

fn header(signed: &Signed, name: &str) -> String {
    signed.headers[name].to_str().unwrap().to_owned()
}

#[test]
fn discord_interactions_verifies_what_discord_signs() {
    let key = PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[5; 32]));
    let public = hex::encode(key.ed25519().unwrap().verifying_key().as_bytes());
    let scheme = Discord::new(std::slice::from_ref(&public), DEFAULT_TOLERANCE).unwrap();
    let body = br#"{"id":"1","type":2,"data":{"name":"ping"}}"#;
    let signed = scheme
        .sign_request(&Outgoing::new(body, &uri(), now()).with_key(&key))
        .unwrap();
    let ask = |body: &[u8]| {
        sdk(
            "discord-interactions",
            json!({"op": "discord-verify", "body": String::from_utf8_lossy(body),
                   "signature": header(&signed, "x-signature-ed25519"),
                   "timestamp": header(&signed, "x-signature-timestamp"), "publicKey": public}),
        )
    };
    assert_eq!(ask(body)["ok"], true);
    assert_eq!(
        ask(b"{}")["ok"],
        false,
        "the SDK must refuse a tampered body"
    );
}

#[test]
fn standard_webhooks_library_and_ours_agree_both_ways() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let scheme = StandardWebhooks::new(vec![Secret::from(secret)], DEFAULT_TOLERANCE).unwrap();
    let body = r#"{"type":"invoice.paid","id":42}"#;
    let at = now();
    // The SDK signs, we verify.
    let theirs = sdk(
        "standardwebhooks",
        json!({"op": "standardwebhooks-sign", "secret": secret, "id": "msg_sdk_1", "timestamp": at, "body": body}),
    );
    let headers = testutil::headers(&[
        ("webhook-id", "msg_sdk_1"),
        ("webhook-timestamp", &at.to_string()),
        ("webhook-signature", theirs["signature"].as_str().unwrap()),
    ]);
    assert_eq!(verify_at(&scheme, &headers, body.as_bytes(), at), Ok(()));
    // We sign, the SDK verifies (and refuses a tampered body).
    let ours = scheme.sign(body.as_bytes(), &uri(), at).unwrap();
    let map: serde_json::Map<String, Value> = ours
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap())))
        .collect();
    let ask = |body: &str| {
        sdk(
            "standardwebhooks",
            json!({"op": "standardwebhooks-verify", "secret": secret, "headers": map, "body": body}),
        )
    };
    assert_eq!(ask(body)["ok"], true, "{}", ask(body));
    assert_eq!(ask("{}")["ok"], false);
}

#[test]
fn sendgrid_eventwebhook_verifies_what_we_sign() {
    use p256::pkcs8::EncodePublicKey as _;
    let key = PrivateKey::P256(p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap());
    let public = STANDARD.encode(
        key.p256()
            .unwrap()
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes(),
    );
    let scheme = Sendgrid::new(std::slice::from_ref(&public), DEFAULT_TOLERANCE).unwrap();
    let body = r#"[{"email":"a@example.com","event":"delivered","sg_event_id":"x"}]"#;
    let signed = scheme
        .sign_request(&Outgoing::new(body.as_bytes(), &uri(), now()).with_key(&key))
        .unwrap();
    let ask = |body: &str| {
        sdk(
            "@sendgrid/eventwebhook",
            json!({"op": "sendgrid-verify", "publicKey": public, "body": body,
                   "signature": header(&signed, "x-twilio-email-event-webhook-signature"),
                   "timestamp": header(&signed, "x-twilio-email-event-webhook-timestamp")}),
        )
    };
    assert_eq!(ask(body)["ok"], true);
    assert_eq!(ask("[]")["ok"], false);
}

#[test]
fn hubspot_signature_agrees_both_ways() {
    let url = "https://hooks.example.com/hooks/demo?x=1";
    let scheme = Hubspot::new(
        vec![Secret::from("hubspot-client-secret")],
        None,
        DEFAULT_TOLERANCE,
    );
    let body = r#"[{"eventId":1,"subscriptionType":"contact.creation"}]"#;
    let at = now();
    let ms = (at * 1000).to_string();
    let theirs = sdk(
        "@hubspot/api-client",
        json!({"op": "hubspot-sign", "secret": "hubspot-client-secret", "method": "POST",
               "url": url, "body": body, "timestamp": ms}),
    );
    let headers = testutil::headers(&[
        (
            "x-hubspot-signature-v3",
            theirs["signature"].as_str().unwrap(),
        ),
        ("x-hubspot-request-timestamp", &ms),
    ]);
    assert_eq!(verify_at(&scheme, &headers, body.as_bytes(), at), Ok(()));
    let ours = scheme
        .sign(body.as_bytes(), &url.parse().unwrap(), at)
        .unwrap();
    let ask = |body: &str| {
        sdk(
            "@hubspot/api-client",
            json!({"op": "hubspot-verify", "secret": "hubspot-client-secret", "method": "POST",
                   "url": url, "body": body,
                   "signature": ours["x-hubspot-signature-v3"].to_str().unwrap(),
                   "timestamp": ours["x-hubspot-request-timestamp"].to_str().unwrap()}),
        )
    };
    assert_eq!(ask(body)["ok"], true);
    assert_eq!(ask("[]")["ok"], false);
}

#[test]
fn paddle_sdk_verifies_what_we_sign() {
    let secret = "pdl_ntfset_01hj6rjc9fm7q5f7ya8h6xdxwn_abcdef";
    let scheme = Paddle::new(vec![Secret::from(secret)], paddle::DEFAULT_TOLERANCE);
    let body = r#"{"event_id":"evt_01hv8x","event_type":"transaction.paid","data":{}}"#;
    let signed = scheme.sign(body.as_bytes(), &uri(), now()).unwrap();
    let ask = |body: &str| {
        sdk(
            "@paddle/paddle-node-sdk",
            json!({"op": "paddle-verify", "secret": secret, "body": body,
                   "signature": signed["paddle-signature"].to_str().unwrap()}),
        )
    };
    assert_eq!(ask(body)["ok"], true);
    assert_eq!(ask("{}")["ok"], false);
}

#[test]
fn linear_sdk_verifies_what_we_sign() {
    let secret = "lin_wh_hookhost_test_secret";
    let scheme = Linear::new(vec![Secret::from(secret)], linear::DEFAULT_TOLERANCE);
    let body = format!(
        r#"{{"action":"create","type":"Issue","data":{{"id":"a"}},"webhookTimestamp":{}}}"#,
        now() * 1000
    );
    let signed = scheme.sign(body.as_bytes(), &uri(), now()).unwrap();
    let ask = |body: &str| {
        sdk(
            "@linear/sdk",
            json!({"op": "linear-verify", "secret": secret, "body": body,
                   "signature": signed["linear-signature"].to_str().unwrap()}),
        )
    };
    assert_eq!(ask(&body)["ok"], true, "{}", ask(&body));
    assert_eq!(ask(&body.replace("create", "remove"))["ok"], false);
    assert_eq!(verify_at(&scheme, &signed, body.as_bytes(), now()), Ok(()));
}
