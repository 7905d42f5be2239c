//! Plugins have no ambient authority: no files, no environment, no sockets,
//! and no outbound HTTP unless their manifest grants a host.

use hookhost_test_artifacts::GUEST_SANDBOX;
use reqwest::StatusCode;

use crate::support::{TestHost, plugin};

#[tokio::test]
async fn a_plugin_cannot_read_files_env_open_sockets_or_call_out() {
    // Something the plugin would find if it could see the host's environment.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let host = TestHost::start(&[plugin("sandbox", GUEST_SANDBOX)]).await;
    let response = host
        .post("/hooks/sandbox", listener.local_addr().unwrap().to_string())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let report: serde_json::Value = response.json().await.unwrap();
    let outcomes = report.as_object().unwrap();
    // Files, environment, sockets, names and outbound HTTP were each tried.
    for attempt in [
        "fs_read",
        "fs_read_dir",
        "env_vars",
        "env_home",
        "tcp_connect",
        "dns_lookup",
        "http_request",
    ] {
        assert!(
            outcomes.contains_key(attempt),
            "{attempt} missing: {report}"
        );
    }
    assert!(
        outcomes["http_request"]
            .as_str()
            .unwrap()
            .contains("HTTP request denied"),
        "refused by the allowlist, not by a failed connection: {report}"
    );
    for (attempt, outcome) in outcomes {
        let outcome = outcome.as_str().unwrap_or_default();
        assert!(
            outcome.starts_with("denied") || outcome.starts_with("empty"),
            "{attempt} was allowed: {outcome} (full report: {report})"
        );
    }
    // And nothing connected to the listener.
    assert!(
        listener.accept().is_err(),
        "the plugin reached a host socket"
    );
    host.stop().await;
}
