//! The dashboard at `/ui/` in a real browser: headless Chromium driven by
//! `tests/ui/dashboard.mjs` (playwright-core from the repository's
//! `node_modules`) against the real host. A missing browser or driver fails
//! the test with the fix; it never passes without having run the page.
//! Screenshots of each page go to `target/ui-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hookhost::secret::Token;
use hookhost_test_artifacts::{ECHO, GUEST_REJECT};
use reqwest::StatusCode;

use crate::support::{TestHost, deploy, eventually, plugin, plugin_with, wait_for};

const QUEUE: &str = "mode = \"queue\"\n";
/// A manifest that does not validate: the plugins page shows its error.
const BROKEN: &str = "mode = \"sideways\"\n";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// `target/ui-screenshots/` (beside `target/tmp`, wherever the target is).
fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .join("ui-screenshots")
}

/// Runs the browser script against `admin` with `args`; panics with its
/// output unless every check passed.
async fn browse(admin: &str, args: &[&str]) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "\n\n*** NO BROWSER: {chromium} is missing. The dashboard tests need Debian's \
         Chromium: run `make browser` (apt-get install -y chromium) or set CHROMIUM. \
         They fail rather than pass without one. ***\n"
    );
    let root = root();
    assert!(
        root.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in {}/node_modules: run `make js-tools`",
        root.display()
    );
    let mut command = Command::new("node");
    command
        .arg(root.join("tests/ui/dashboard.mjs"))
        .arg(admin)
        .arg("--screenshots")
        .arg(screenshots())
        .args(args)
        .current_dir(&root);
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await
    .expect("the browser run finished within 3 minutes")
    .unwrap()
    .expect("node runs (Node.js 20 or later is needed, as for the JS plugins)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "tests/ui/dashboard.mjs failed:\n{stdout}\n{stderr}"
    );
}

/// The bar: the page lists the plugins (and a load error) and a dead event;
/// another origin cannot replay it; the Replay button turns it `done`; no
/// request leaves 127.0.0.1.
#[tokio::test]
async fn the_dashboard_shows_a_dead_event_and_replays_it_in_a_real_browser() {
    let host = TestHost::start_with_admin(
        &[
            plugin_with("q", GUEST_REJECT, QUEUE),
            plugin("echo", ECHO),
            plugin_with("broken", ECHO, BROKEN),
        ],
        |_| {},
    )
    .await;
    for n in 0..5 {
        let response = host.post("/hooks/echo", format!("{{\"n\":{n}}}")).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    for id in ["dash-1", "dash-2"] {
        let response = host
            .client
            .post(host.url("/hooks/q"))
            .header("idempotency-key", id)
            .header("x-api-key", "dashboard-s3cret")
            .header("content-type", "application/json")
            .body(r#"{"event":"order.created","order":{"id":42,"total":"9.90"}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        wait_for(&host, id, "dead").await;
    }
    // The next version of `q` handles the event: a replay turns it done.
    let old = plugin_hash(&host, "q").await;
    deploy(&host.plugins, "q", &std::fs::read(ECHO).unwrap());
    eventually(
        Duration::from_secs(30),
        "q's new version is live",
        || async {
            let hash = plugin_hash(&host, "q").await;
            (hash != old).then_some(())
        },
    )
    .await;

    let admin = host.admin_url("");
    let args = [
        "--route",
        "/hooks/echo",
        "--route",
        "/hooks/q",
        "--plugin",
        "q",
        "--load-error",
        "broken.toml",
        "--dead",
        "dash-1",
        "--dead-route",
        "/hooks/q",
        // dash-2 is then the route's one dead event.
        "--bulk-replay",
        "/hooks/q",
    ];
    browse(&admin, &args).await;
    for id in ["dash-1", "dash-2"] {
        let done = wait_for(&host, id, "done").await;
        assert_eq!(done["replays"], 1, "{id}");
    }
    for shot in ["overview", "plugins", "events", "events-replayed"] {
        let path = screenshots().join(format!("{shot}.png"));
        assert!(path.is_file(), "{} was not written", path.display());
    }
}

/// With `--admin-token`: the login form, the token kept in the tab's
/// session and sent as a header, never in a URL.
#[tokio::test]
async fn the_dashboard_asks_for_the_admin_token_and_keeps_it_out_of_urls() {
    let host = TestHost::start_with_admin(&[plugin_with("q", ECHO, QUEUE)], |config| {
        config.admin_token = Some(Token::new("dashboard-t0ken"));
    })
    .await;
    // The page loads without the token; its data does not.
    let page = host
        .client
        .get(host.admin_url("/ui/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let stats = host
        .client
        .get(host.admin_url("/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), StatusCode::UNAUTHORIZED);
    browse(
        &host.admin_url(""),
        &["--token", "dashboard-t0ken", "--route", "/hooks/q"],
    )
    .await;
    assert!(screenshots().join("login.png").is_file());
}

/// The page's headers: everything from itself only, never framed, never
/// sniffed; and without a token, the same loopback checks as the API.
#[tokio::test]
async fn the_dashboard_is_served_with_security_headers_and_the_api_checks() {
    let host = TestHost::start_with_admin(&[plugin("echo", ECHO)], |_| {}).await;
    let page = host
        .client
        .get(host.admin_url("/ui/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(page.text().await.unwrap().contains("app.js"));
    let script = host
        .client
        .get(host.admin_url("/ui/app.js"))
        .send()
        .await
        .unwrap();
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    // A rebound name (DNS rebinding) gets no page either.
    let rebound = host
        .client
        .get(host.admin_url("/ui/"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    let (status, stats) = host.admin_get("/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["bucket_seconds"], 10);
    assert_eq!(stats["buckets"], 360);
}

/// `GET /stats` counts each answered request in its route's current bucket
/// (or the one before, when the ten seconds turn over in between).
#[tokio::test]
async fn stats_count_requests_errors_and_latency_per_route() {
    let host = TestHost::start_with_admin(&[plugin("echo", ECHO)], |_| {}).await;
    for _ in 0..3 {
        assert_eq!(
            host.post("/hooks/echo", "hi").await.status(),
            StatusCode::OK
        );
    }
    let (status, stats) = host.admin_get("/stats").await;
    assert_eq!(status, StatusCode::OK);
    let route = &stats["routes"][0];
    assert_eq!(route["route"], "/hooks/echo");
    assert_eq!(route["mode"], "sync");
    let requests = route["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 360);
    let recent: u64 = requests[358..].iter().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(recent, 3, "{requests:?}");
    let errors: u64 = route["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(errors, 0);
    let p99 = route["p99_ms"].as_array().unwrap();
    assert!(
        p99[358..]
            .iter()
            .any(|v| v.as_f64().is_some_and(|ms| ms > 0.0)),
        "{p99:?}"
    );
}

async fn plugin_hash(host: &TestHost, name: &str) -> String {
    let (_, plugins) = host.admin_get("/plugins").await;
    plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name && p["serving"] == true)
        .map(|p| p["sha256"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}
