//! Hostile guests are contained: each runs on one route of the real
//! `hookhost` binary, over and over, while another route (`echo`) is timed.
//! That route's p99 stays within 2x of its idle p99 (plus a small floor, so
//! two busy cores shared with the rest of the suite do not make it flaky),
//! the host's peak RSS stays bounded, and the hostile route fails (or
//! answers) the documented way. Every scenario prints its figures:
//!
//! ```text
//! hostile fields-bomb: 500 x12; echo p99 idle 1.2ms, under attack 1.9ms; RSS 41 MiB, peak 52 MiB (+11)
//! ```
//!
//! `cargo test --test all -- hostile_guests --nocapture` shows them. The
//! scenarios run one at a time (a lock), each for about a second.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookhost_test_artifacts::{
    ECHO, GUEST_FETCH, GUEST_FIELDS_BOMB, GUEST_HUGE_BODY, GUEST_HUGE_HEADERS, GUEST_KV_ABUSE,
    GUEST_LOG_FLOOD, GUEST_LOOPER, GUEST_MEMORY_HOG, GUEST_OUTBOUND_FLOOD, GUEST_PANICKER,
    GUEST_SANDBOX, GUEST_STACK_OVERFLOW,
};

use crate::support::{Binary, LocalServer, Plugin, folders, install, plugin, plugin_with};

/// One scenario at a time: they measure latency and RSS.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Echo requests per latency sample.
const SAMPLES: usize = 200;
/// How long the attack runs while echo is timed, at least.
const ATTACK: Duration = Duration::from_millis(800);
/// Added to 2x the idle p99 before comparing: a scheduler hiccup on two
/// cores shared with other tests is a few milliseconds.
const P99_FLOOR: Duration = Duration::from_millis(40);

/// What one scenario measured.
#[derive(Debug)]
struct Figures {
    idle_p99: Duration,
    attack_p99: Duration,
    rss_before: u64,
    rss_peak: u64,
    /// Status and body (cut to 64 KiB) of every hostile request that
    /// finished.
    answers: Vec<(u16, String)>,
}

impl Figures {
    fn rss_growth(&self) -> u64 {
        self.rss_peak.saturating_sub(self.rss_before)
    }

    fn statuses(&self) -> Vec<u16> {
        let mut statuses: Vec<u16> = self.answers.iter().map(|(status, _)| *status).collect();
        statuses.dedup();
        statuses
    }
}

/// `VmRSS` or `VmHWM` (peak) of process `pid`, in bytes.
fn rss(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Resets the peak RSS (`VmHWM`) of `pid` to its current RSS.
fn reset_peak(pid: u32) {
    // "5" to clear_refs resets the peak RSS (Linux 4.0+).
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// The p99 of `SAMPLES` sequential echo requests.
async fn echo_p99(client: &reqwest::Client, url: &str) -> Duration {
    let mut times = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let sent = Instant::now();
        let response = client.post(url).body("ping").send().await.unwrap();
        assert_eq!(response.status(), 200, "echo failed");
        response.bytes().await.unwrap();
        times.push(sent.elapsed());
    }
    times.sort();
    times[SAMPLES * 99 / 100 - 1]
}

const MIB: u64 = 1024 * 1024;

/// Runs `attack` (one hostile request, returning its status and body) in a
/// loop on a host serving `hostile` and `echo`, while echo is timed; then
/// checks echo's p99 and the RSS growth against `rss_bound` and prints
/// the figures under `name`.
async fn contained<F, Fut>(name: &str, hostile: Plugin<'_>, rss_bound: u64, attack: F) -> Figures
where
    F: Fn(reqwest::Client, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (u16, String)> + Send,
{
    let _serial = SERIAL.lock().await;
    let (_dir, plugins, data) = folders();
    install(&plugins, &[hostile, plugin("echo", ECHO)]);
    let host = Binary::spawn(&plugins, &data, &[]);
    let pid = host.child.id();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let echo = host.url("/hooks/echo");
    echo_p99(&client, &echo).await; // warm-up
    let idle_p99 = echo_p99(&client, &echo).await;
    let rss_before = rss(pid, "VmRSS");
    reset_peak(pid);

    let answers = Arc::new(Mutex::new(Vec::new()));
    let attacker = {
        let (client, base, answers) = (client.clone(), host.url(""), answers.clone());
        tokio::spawn(async move {
            loop {
                let (status, body) = attack(client.clone(), base.clone()).await;
                let cut: String = body.chars().take(64 * 1024).collect();
                answers.lock().unwrap().push((status, cut));
            }
        })
    };
    // Let the first hostile call get going before timing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut attack_p99 = echo_p99(&client, &echo).await;
    while started.elapsed() < ATTACK {
        attack_p99 = attack_p99.max(echo_p99(&client, &echo).await);
    }
    // One finished hostile request at least, unless it is slow by design.
    for _ in 0..100 {
        if !answers.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    attacker.abort();
    let rss_peak = rss(pid, "VmHWM").max(rss(pid, "VmRSS"));
    let figures = Figures {
        idle_p99,
        attack_p99,
        rss_before,
        rss_peak,
        answers: std::mem::take(&mut answers.lock().unwrap()),
    };
    println!(
        "hostile {name}: {:?} x{}; echo p99 idle {:.1?}, under attack {:.1?}; RSS {} MiB, peak {} MiB (+{})",
        figures.statuses(),
        figures.answers.len(),
        figures.idle_p99,
        figures.attack_p99,
        figures.rss_before / MIB,
        figures.rss_peak / MIB,
        figures.rss_growth() / MIB,
    );
    assert!(
        figures.attack_p99 <= figures.idle_p99 * 2 + P99_FLOOR,
        "{name}: echo p99 went from {:?} idle to {:?} under attack",
        figures.idle_p99,
        figures.attack_p99
    );
    assert!(
        figures.rss_growth() <= rss_bound,
        "{name}: host RSS grew by {} MiB (bound {} MiB): {figures:?}",
        figures.rss_growth() / MIB,
        rss_bound / MIB
    );
    assert!(
        !figures.answers.is_empty(),
        "{name}: no hostile request finished"
    );
    // Still serving after the attack.
    assert_eq!(
        client.post(&echo).body("x").send().await.unwrap().status(),
        200
    );
    figures
}

/// An attack that posts `body` to `path` and returns the answer.
fn post(
    path: &'static str,
    body: impl Into<String>,
) -> impl Fn(reqwest::Client, String) -> std::pin::Pin<Box<dyn Future<Output = (u16, String)> + Send>>
+ Send
+ Sync
+ 'static {
    let body: String = body.into();
    move |client: reqwest::Client, base: String| {
        let body = body.clone();
        Box::pin(async move {
            match client.post(format!("{base}{path}")).body(body).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (status, response.text().await.unwrap_or_default())
                }
                Err(err) => (0, format!("request failed: {err}")),
            }
        })
    }
}

/// Every answer had `status`.
fn all_answered(figures: &Figures, status: u16) {
    assert!(
        figures.answers.iter().all(|(s, _)| *s == status),
        "expected only {status}: {:?}",
        figures.answers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_contained() {
    let looper = plugin_with("looper", GUEST_LOOPER, "[limits]\ntimeout = \"300ms\"\n");
    let figures = contained("looper", looper, 64 * MIB, post("/hooks/looper", "{}")).await;
    all_answered(&figures, 504);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_contained() {
    let hog = plugin_with("hog", GUEST_MEMORY_HOG, "[limits]\nmemory = \"16MiB\"\n");
    let figures = contained("memory-hog", hog, 96 * MIB, post("/hooks/hog", "{}")).await;
    all_answered(&figures, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_contained() {
    let panicker = plugin("panicker", GUEST_PANICKER);
    let figures = contained(
        "panicker",
        panicker,
        64 * MIB,
        post("/hooks/panicker", "{}"),
    )
    .await;
    all_answered(&figures, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_env_socket_dns_and_disallowed_outbound_attempts_are_contained() {
    let sandbox = plugin("sandbox", GUEST_SANDBOX);
    let figures = contained(
        "sandbox",
        sandbox,
        64 * MIB,
        post("/hooks/sandbox", "127.0.0.1:1"),
    )
    .await;
    all_answered(&figures, 200);
    let report: serde_json::Value = serde_json::from_str(&figures.answers[0].1).unwrap();
    for (attempt, outcome) in report.as_object().unwrap() {
        let outcome = outcome.as_str().unwrap();
        assert!(
            outcome.starts_with("denied") || outcome.starts_with("empty"),
            "{attempt}: {outcome}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_host_call_is_contained() {
    // Outbound to a loopback server that stalls: the call waits in the
    // host (no epochs fire there) until the delivery's deadline.
    let server = LocalServer::start(200, b"late".to_vec(), Duration::from_secs(60)).await;
    let manifest = format!(
        "[limits]\ntimeout = \"500ms\"\n[allow]\nhttp = [\"{}\"]\n",
        server.addr
    );
    let fetch = plugin_with("fetch", GUEST_FETCH, &manifest);
    let url = format!("http://{}/stall", server.addr);
    let figures = contained("slow host call", fetch, 64 * MIB, post("/hooks/fetch", url)).await;
    all_answered(&figures, 504);
}

/// `stack-overflow`: recurses until the wasm stack overflows.
pub(crate) mod stack_overflow {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stack_overflow_is_a_contained_trap() {
        let guest = plugin("deep", GUEST_STACK_OVERFLOW);
        let figures = contained("stack-overflow", guest, 64 * MIB, post("/hooks/deep", "{}")).await;
        all_answered(&figures, 500);
        assert!(
            figures.answers[0].1.contains("plugin failed"),
            "{:?}",
            figures.answers[0]
        );
    }
}

/// `huge-body`: answers with a body of many MiB.
pub(crate) mod huge_body {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_huge_response_body_is_bounded_by_the_memory_cap() {
        // 24 MiB fits the default 64 MiB cap and is sent; 80 MiB cannot be
        // built inside it.
        let guest = plugin("big", GUEST_HUGE_BODY);
        let figures = contained(
            "huge-body",
            guest,
            192 * MIB,
            post("/hooks/big?mib=24", "{}"),
        )
        .await;
        all_answered(&figures, 200);
        let client = reqwest::Client::new();
        let _serial = SERIAL.lock().await;
        let (_dir, plugins, data) = folders();
        install(&plugins, &[plugin("big", GUEST_HUGE_BODY)]);
        let host = Binary::spawn(&plugins, &data, &[]);
        let response = client
            .post(host.url("/hooks/big?mib=24"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.bytes().await.unwrap().len(), 24 << 20);
        let response = client
            .post(host.url("/hooks/big?mib=80"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
    }
}

/// `huge-headers`: answers with thousands of headers.
pub(crate) mod huge_headers {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_response_with_too_many_headers_is_refused() {
        let guest = plugin("headers", GUEST_HUGE_HEADERS);
        let figures = contained(
            "huge-headers",
            guest,
            128 * MIB,
            post("/hooks/headers", "{}"),
        )
        .await;
        all_answered(&figures, 500);
        // A plugin within the bounds is answered as it asked.
        let _serial = SERIAL.lock().await;
        let (_dir, plugins, data) = folders();
        install(&plugins, &[plugin("headers", GUEST_HUGE_HEADERS)]);
        let host = Binary::spawn(&plugins, &data, &[]);
        let response = reqwest::Client::new()
            .post(host.url("/hooks/headers?n=50"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("x-h-49"));
        let response = reqwest::Client::new()
            .post(host.url("/hooks/headers?n=101"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            500,
            "101 headers are more than the 100 sent"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            host.log().contains("101 headers; at most 100 are sent"),
            "{}",
            host.log()
        );
    }
}

/// `log-flood`: thousands of `log` calls and stdout lines.
pub(crate) mod log_flood {
    use super::*;

    /// The numbers of the `PREFIX N` lines delivery `id` logged (the log
    /// line reads `… hookhost::plugin: line 7`).
    fn logged(log: &str, id: &str, prefix: &str) -> Vec<u32> {
        log.lines()
            .filter(|line| line.contains(id))
            .filter_map(|line| {
                let at = line.find(prefix)?;
                let rest = &line[at + prefix.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_flood_is_contained() {
        let guest = plugin("flood", GUEST_LOG_FLOOD);
        let figures = contained(
            "log-flood",
            guest,
            64 * MIB,
            post("/hooks/flood?n=20000&out=20000", "{}"),
        )
        .await;
        all_answered(&figures, 200);
    }

    #[tokio::test]
    async fn the_line_past_the_log_budget_becomes_one_marker_and_none_within_is_lost() {
        let _serial = SERIAL.lock().await;
        let (_dir, plugins, data) = folders();
        install(&plugins, &[plugin("flood", GUEST_LOG_FLOOD)]);
        let host = Binary::spawn(&plugins, &data, &[]);
        let client = reqwest::Client::new();
        for (id, query) in [
            ("flood-exact", "n=1000"),
            ("flood-over", "n=1001"),
            ("flood-out", "n=0&out=20000"),
        ] {
            let response = client
                .post(host.url(&format!("/hooks/flood?{query}")))
                .header("x-github-delivery", id)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log = host.log();
        let markers = |id: &str, marker: &str| {
            log.lines()
                .filter(|line| line.contains(id) && line.contains(marker))
                .count()
        };

        // Exactly the budget: every line, no marker.
        let exact = logged(&log, "flood-exact", "plugin: line ");
        assert_eq!(exact, (1..=1000).collect::<Vec<_>>());
        assert_eq!(markers("flood-exact", "log budget exhausted"), 0);
        // One more: every line of the budget, then one marker in its place.
        let over = logged(&log, "flood-over", "plugin: line ");
        assert_eq!(
            over,
            (1..=1000).collect::<Vec<_>>(),
            "lines within the budget"
        );
        assert_eq!(markers("flood-over", "log budget exhausted"), 1);
        assert!(
            log.contains("log budget exhausted: plugin logged 1000 lines"),
            "{log}"
        );

        // stdout: whole lines up to the 64 KiB budget, then one marker; no
        // line cut short (which would repeat or break the numbering).
        let out = logged(&log, "flood-out", "plugin: out ");
        let last = *out.last().unwrap();
        assert_eq!(out, (1..=last).collect::<Vec<_>>(), "whole, in order");
        let written: usize = (1..=last).map(|i| format!("out {i}\n").len()).sum();
        let next = format!("out {}\n", last + 1).len();
        assert!(
            written <= 64 * 1024 && written + next > 64 * 1024,
            "logged {last} lines ({written} bytes)"
        );
        assert_eq!(markers("flood-out", "output budget exhausted"), 1);
    }
}

/// `kv-abuse`: writes until its key-value quota stops it.
pub(crate) mod kv_abuse {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kv_quota_abuse_is_refused_and_contained() {
        let guest = plugin_with("kvabuse", GUEST_KV_ABUSE, "[kv]\nmax_total = \"256KiB\"\n");
        let figures = contained("kv-abuse", guest, 64 * MIB, post("/hooks/kvabuse", "{}")).await;
        all_answered(&figures, 200);
        let first: serde_json::Value = serde_json::from_str(&figures.answers[0].1).unwrap();
        assert!(first["written"].as_u64().unwrap() <= 16, "{first}");
        assert!(
            first["error"].as_str().unwrap().contains("QuotaExceeded"),
            "{first}"
        );
    }
}

/// `outbound-flood`: opens dozens of outbound requests at once.
pub(crate) mod outbound_flood {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_16_outbound_requests_of_an_instance_are_open_at_once() {
        let server = LocalServer::start(200, b"ok".to_vec(), Duration::from_millis(300)).await;
        let manifest = format!("[allow]\nhttp = [\"{}\"]\n", server.addr);
        let guest = plugin_with("flood", GUEST_OUTBOUND_FLOOD, &manifest);
        let url = format!("http://{}/flood", server.addr);
        let figures = contained(
            "outbound-flood",
            guest,
            64 * MIB,
            post("/hooks/flood?n=64", url),
        )
        .await;
        all_answered(&figures, 200);
        for (_, body) in &figures.answers {
            let report: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(report["ok"], 16, "{report}");
            assert_eq!(report["limited"], 48, "{report}");
            assert_eq!(report["other"], serde_json::json!([]), "{report}");
        }
    }
}

/// `fields-bomb`: grows host memory through wasi:http `fields`.
pub(crate) mod fields_bomb {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fields_count_against_the_plugins_memory_cap() {
        // 4000 fields of 60 KiB are ~240 MiB of host memory for a plugin
        // capped at 16 MiB; counted against its cap it stops near 16.
        let guest = plugin_with("bomb", GUEST_FIELDS_BOMB, "[limits]\nmemory = \"16MiB\"\n");
        let figures = contained("fields-bomb", guest, 48 * MIB, post("/hooks/bomb", "{}")).await;
        all_answered(&figures, 500);
        assert!(
            figures.answers[0]
                .1
                .contains("plugin exceeded its memory limit"),
            "{:?}",
            figures.answers[0]
        );
        // A few fields stay well within it.
        let _serial = SERIAL.lock().await;
        let (_dir, plugins, data) = folders();
        install(
            &plugins,
            &[plugin_with(
                "bomb",
                GUEST_FIELDS_BOMB,
                "[limits]\nmemory = \"16MiB\"\n",
            )],
        );
        let host = Binary::spawn(&plugins, &data, &[]);
        let response = reqwest::Client::new()
            .post(host.url("/hooks/bomb?n=20"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "made 20");
    }
}
