//! Handshakes through the real host: each provider's endpoint check is
//! answered by the host exactly as the provider documents it (status,
//! content type, body, `nosniff`), on a sync route and a queue route alike,
//! with no plugin call, no stored event, one count in `/metrics`; and the
//! methods and tokens around them (GET only where the scheme needs it, 403
//! for a wrong Meta verify token).
//!
//! Requests are built as the providers send them (bodies and query strings
//! from their docs) and signed with the host's own signing code; expected
//! answers are computed here, independently of the schemes.

use hmac::{KeyInit as _, Mac as _};
use hookhost::secret::SecretResolver;
use hookhost::verify::{self, Outgoing, PrivateKey, RawVerify};
use hookhost_test_artifacts::GUEST_INSPECT;
use reqwest::StatusCode;
use serde_json::Value;

use crate::metrics::{scrape, value};
use crate::support::{TestHost, plugin_with, unix_now, with_headers};

const SECRET: &str = "handshake-secret-for-tests";

/// The two routes every test host serves, with the same `[verify]`.
const ROUTES: [&str; 2] = ["/hooks/sync", "/hooks/queue"];

/// A host with the inspect plugin on `/hooks/sync` (sync) and
/// `/hooks/queue` (queue mode), both verified by `verify` (the `[verify]`
/// table's lines), with the admin API; `files` beside the manifests.
async fn start(verify: &str, files: &[(&'static str, Vec<u8>)]) -> TestHost {
    let sync = format!("route = \"/hooks/sync\"\n[verify]\n{verify}");
    let queue = format!("route = \"/hooks/queue\"\nmode = \"queue\"\n[verify]\n{verify}");
    let mut plugins = vec![
        plugin_with("sync", GUEST_INSPECT, &sync),
        plugin_with("queue", GUEST_INSPECT, &queue),
    ];
    for plugin in &mut plugins {
        plugin.files.extend(files.iter().cloned());
    }
    TestHost::start_with_admin(&plugins, |_| {}).await
}

/// The scheme `verify` describes, as a sender would sign with it.
fn signer(verify: &str, dir: &std::path::Path) -> std::sync::Arc<dyn verify::Scheme> {
    let raw: RawVerify = toml::from_str(verify).unwrap();
    verify::build(&raw, &SecretResolver::new(dir)).unwrap()
}

/// POSTs `body` to `route` with `headers` (and `query`, if any).
async fn post(
    host: &TestHost,
    route: &str,
    query: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> reqwest::Response {
    let request = host
        .client
        .post(format!("{}{query}", host.url(route)))
        .body(body.to_vec());
    with_headers(request, headers).send().await.unwrap()
}

/// Checks the answer is exactly the documented one: status, content type,
/// body, and `nosniff`.
async fn assert_answered(
    route: &str,
    response: reqwest::Response,
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) {
    assert_eq!(response.status(), status, "{route}");
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("content-type").map(|v| v.to_str().unwrap()),
        content_type,
        "{route}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff", "{route}");
    let got = response.bytes().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(body),
        "{route}: the documented answer, not the plugin's"
    );
}

/// After both routes got one handshake of each of `kinds`: no plugin
/// call, no event, and `/metrics` counted each once per route.
async fn assert_host_work_only(host: &TestHost, kinds: &[&str]) {
    let (_, plugins) = host.admin_get("/plugins").await;
    for plugin in plugins["plugins"].as_array().unwrap() {
        let deliveries = &plugin["deliveries"];
        for (outcome, count) in deliveries.as_object().unwrap() {
            assert_eq!(count, 0, "{}: {outcome} {deliveries}", plugin["name"]);
        }
    }
    let (status, events) = host.admin_get("/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events["events"], serde_json::json!([]), "no event stored");
    let scrape = scrape(host).await;
    for route in ROUTES {
        for kind in kinds {
            assert_eq!(
                value(
                    &scrape,
                    "hookhost_handshakes_total",
                    &[("route", route), ("kind", kind)]
                ),
                Some(1.0),
                "{route} {kind}"
            );
        }
    }
}

fn hmac_sha256_hex(key: &str, message: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn discord_ping_is_answered_pong_by_the_host() {
    let key = PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]));
    let verify = format!(
        "scheme = \"discord\"\npublic_key = \"{}\"\n",
        hookhost::send::public_key("discord", &key).unwrap()
    );
    let host = start(&verify, &[]).await;
    let scheme = signer(&verify, &host.plugins);
    let body = br#"{"id":"1","application_id":"2","type":1,"version":1}"#;
    for route in ROUTES {
        let uri = host.url(route).parse().unwrap();
        let signed = scheme
            .sign_request(&Outgoing::new(body, &uri, unix_now()).with_key(&key))
            .unwrap();
        let response = post(&host, route, "", &signed.headers, body).await;
        assert_answered(
            route,
            response,
            StatusCode::OK,
            Some("application/json"),
            br#"{"type":1}"#,
        )
        .await;
    }
    assert_host_work_only(&host, scheme.handshakes()).await;

    // A PING with a bad signature is refused like any request: Discord
    // checks that endpoints do this.
    let uri = host.url(ROUTES[0]).parse().unwrap();
    let signed = scheme
        .sign_request(&Outgoing::new(br#"{"type":2}"#, &uri, unix_now()).with_key(&key))
        .unwrap();
    let response = post(&host, ROUTES[0], "", &signed.headers, body).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    host.stop().await;
}

#[tokio::test]
async fn slack_url_verification_is_answered_with_the_challenge() {
    let verify = format!("scheme = \"slack\"\nsecret = \"{SECRET}\"\n");
    let host = start(&verify, &[]).await;
    let scheme = signer(&verify, &host.plugins);
    // From Slack's Events API docs.
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    for route in ROUTES {
        let headers = scheme
            .sign(body, &host.url(route).parse().unwrap(), unix_now())
            .unwrap();
        let response = post(&host, route, "", &headers, body).await;
        assert_answered(
            route,
            response,
            StatusCode::OK,
            Some("application/json"),
            br#"{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#,
        )
        .await;
    }
    assert_host_work_only(&host, scheme.handshakes()).await;
    host.stop().await;
}

/// Twitch's headers for a message of `kind`, signed as Twitch signs:
/// HMAC-SHA256 over message id + timestamp + body.
fn twitch_headers(id: &str, kind: &str, body: &[u8]) -> http::HeaderMap {
    let timestamp = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let mut message = Vec::new();
    message.extend_from_slice(id.as_bytes());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    let mut headers = http::HeaderMap::new();
    headers.insert("twitch-eventsub-message-id", id.parse().unwrap());
    headers.insert(
        "twitch-eventsub-message-timestamp",
        timestamp.parse().unwrap(),
    );
    headers.insert("twitch-eventsub-message-type", kind.parse().unwrap());
    headers.insert(
        "twitch-eventsub-message-signature",
        format!("sha256={}", hmac_sha256_hex(SECRET, &message))
            .parse()
            .unwrap(),
    );
    headers.insert("content-type", "application/json".parse().unwrap());
    headers
}

#[tokio::test]
async fn twitch_callback_verification_and_revocation_are_answered_by_the_host() {
    let verify = format!("scheme = \"twitch\"\nsecret = \"{SECRET}\"\n");
    let host = start(&verify, &[]).await;
    // From Twitch's EventSub docs.
    let challenge = "pogchamp-kappa-360noscope-vohiyo";
    let body = format!(
        r#"{{"challenge":"{challenge}","subscription":{{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"webhook_callback_verification_pending","type":"channel.follow","version":"1","cost":1,"condition":{{"broadcaster_user_id":"12826"}},"transport":{{"method":"webhook","callback":"https://example.com/webhooks/callback"}},"created_at":"2019-11-16T10:11:12.634234626Z"}}}}"#
    );
    for (n, route) in ROUTES.into_iter().enumerate() {
        let headers = twitch_headers(
            &format!("e76c6bd4-55c9-4987-8304-da1588d8988{n}"),
            "webhook_callback_verification",
            body.as_bytes(),
        );
        let response = post(&host, route, "", &headers, body.as_bytes()).await;
        assert_answered(
            route,
            response,
            StatusCode::OK,
            Some("text/plain"),
            challenge.as_bytes(),
        )
        .await;
    }
    let revoked = r#"{"subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"authorization_revoked","type":"channel.follow","cost":1,"version":"1","condition":{"broadcaster_user_id":"12826"},"transport":{"method":"webhook","callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z"}}"#;
    for (n, route) in ROUTES.into_iter().enumerate() {
        let headers = twitch_headers(
            &format!("84c1e79a-2a4b-4c13-ba0b-4312293e9308{n}"),
            "revocation",
            revoked.as_bytes(),
        );
        let response = post(&host, route, "", &headers, revoked.as_bytes()).await;
        assert_answered(route, response, StatusCode::NO_CONTENT, None, b"").await;
    }
    let scheme = signer(&verify, &host.plugins);
    assert_eq!(scheme.handshakes().len(), 2, "{:?}", scheme.handshakes());
    assert_host_work_only(&host, scheme.handshakes()).await;
    host.stop().await;
}

#[tokio::test]
async fn zoom_url_validation_is_answered_with_the_encrypted_token() {
    let verify = format!("scheme = \"zoom\"\nsecret = \"{SECRET}\"\n");
    let host = start(&verify, &[]).await;
    let scheme = signer(&verify, &host.plugins);
    // From Zoom's webhook docs.
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let encrypted = hmac_sha256_hex(SECRET, b"qgg8vlvZRS6UYooatFL8Aw");
    let expected = serde_json::json!({
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": encrypted,
    });
    for route in ROUTES {
        let headers = scheme
            .sign(body, &host.url(route).parse().unwrap(), unix_now())
            .unwrap();
        let response = post(&host, route, "", &headers, body).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["content-type"], "application/json");
        let got: Value = response.json().await.unwrap();
        assert_eq!(got, expected, "{route}");
    }
    assert_host_work_only(&host, scheme.handshakes()).await;
    host.stop().await;
}

#[tokio::test]
async fn meta_subscription_get_is_answered_and_a_wrong_token_is_403() {
    let verify =
        format!("scheme = \"meta\"\nsecret = \"{SECRET}\"\nverify_token = \"file:verify.token\"\n");
    let host = start(
        &verify,
        &[("verify.token", b"meta-verify-token\n".to_vec())],
    )
    .await;
    let scheme = signer(&verify, &host.plugins);
    for route in ROUTES {
        let url = format!(
            "{}?hub.mode=subscribe&hub.verify_token=meta-verify-token&hub.challenge=1158201444",
            host.url(route)
        );
        let response = host.client.get(url).send().await.unwrap();
        assert_answered(
            route,
            response,
            StatusCode::OK,
            Some("text/plain"),
            b"1158201444",
        )
        .await;
    }
    assert_host_work_only(&host, scheme.handshakes()).await;

    // The wrong token is 403, as Meta documents.
    let url = format!(
        "{}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1158201444",
        host.url(ROUTES[0])
    );
    let response = host.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = crate::support::error_body(response).await;
    assert_eq!(body["error"], "bad verify token");

    // A signed event is still a POST to the plugin.
    let event = br#"{"object":"page","entry":[]}"#;
    let headers = scheme
        .sign(event, &host.url(ROUTES[0]).parse().unwrap(), unix_now())
        .unwrap();
    let response = post(&host, ROUTES[0], "", &headers, event).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["verified_by"], "meta");
    host.stop().await;
}

#[tokio::test]
async fn get_is_405_on_every_route_whose_scheme_has_no_get_handshake() {
    let verify = format!("scheme = \"github\"\nsecret = \"{SECRET}\"\n");
    let host = start(&verify, &[]).await;
    let url = format!(
        "{}?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
        host.url(ROUTES[0])
    );
    let response = host.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    host.stop().await;
}

#[tokio::test]
async fn graph_validation_token_is_answered_as_decoded_text() {
    let verify = format!("scheme = \"graph\"\nsecret = \"{SECRET}\"\n");
    let host = start(&verify, &[]).await;
    let scheme = signer(&verify, &host.plugins);
    for route in ROUTES {
        // Graph posts an empty body with the token in the query.
        let response = post(
            &host,
            route,
            "?validationToken=Validation%3A%20Testing%20client%20application%20reachability%20for%20subscription%20Request-Id%3A%2025b90a10",
            &http::HeaderMap::new(),
            b"",
        )
        .await;
        assert_answered(
            route,
            response,
            StatusCode::OK,
            Some("text/plain"),
            b"Validation: Testing client application reachability for subscription Request-Id: 25b90a10",
        )
        .await;
    }
    assert_host_work_only(&host, scheme.handshakes()).await;
    host.stop().await;
}
