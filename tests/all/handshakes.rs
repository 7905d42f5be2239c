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

use hookhost::secret::SecretResolver;
use hookhost::verify::{self, Outgoing, PrivateKey, RawVerify};
use hookhost_test_artifacts::GUEST_INSPECT;
use reqwest::StatusCode;

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
