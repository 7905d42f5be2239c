//! Misbehaving plugins fail their own delivery only, with the documented
//! status, and never take the host or another route down.
//!
//! Also the rule that every test guest has tests: [`tests_of`] names the
//! module of tests for each folder in `tests/guests/`, and
//! `foreach_guest!` turns a guest missing there into a compile error.

use std::time::{Duration, Instant};

use hookhost_test_artifacts::{
    ECHO, GUEST_HOSTILE_MESSAGE, GUEST_LOOPER, GUEST_MEMORY_HOG, GUEST_PANICKER, GUEST_REJECT,
    GUEST_RETRY,
};
use reqwest::StatusCode;

use crate::support::{TestHost, error_body, plugin, plugin_with};

/// Where the tests of each guest in `tests/guests/` are: a module named
/// after the guest (`memory-hog` is `memory_hog`), in the file of the
/// behaviour it serves, whose tests show the guest doing what
/// `tests/guests/README.md` says it does. A guest missing here fails the
/// build (see `assert_guest_tested`); an entry for a guest that is gone is
/// an unused import.
mod tests_of {
    pub(super) use super::{hostile_message, looper, memory_hog, panicker, reject, retry};
    pub(super) use crate::capabilities::{config, fetch, kv, legacy};
    pub(super) use crate::cli::logger;
    pub(super) use crate::hostile_guests::{
        fields_bomb, huge_body, huge_headers, kv_abuse, log_flood, outbound_flood, stack_overflow,
    };
    pub(super) use crate::inbox::{flaky, keyed};
    pub(super) use crate::instances::{counter, sleeper};
    pub(super) use crate::postgres::fleet;
    pub(super) use crate::sandbox;
    pub(super) use crate::serve::inspect;
}

/// Compiles only if guest `$guest` has an entry in [`tests_of`]. For one
/// that has none the error reads: no `NAME` in `guests::tests_of`.
macro_rules! assert_guest_tested {
    ($guest:ident) => {
        #[allow(unused_imports)]
        use self::tests_of::$guest as _; // A guest without tests: see tests/guests/README.md
    };
}

hookhost_test_artifacts::foreach_guest!(assert_guest_tested);

/// `foreach_guest!` names every guest folder there is, so the check above
/// leaves none out.
#[test]
fn foreach_guest_names_every_test_guest() {
    let mut named = Vec::new();
    macro_rules! name {
        ($guest:ident) => {
            named.push(stringify!($guest).to_owned());
        };
    }
    hookhost_test_artifacts::foreach_guest!(name);
    named.sort();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/guests");
    let mut folders: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .map(|path| {
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .replace('-', "_")
        })
        .collect();
    folders.sort();
    assert_eq!(
        named,
        folders,
        "foreach_guest! and the folders in {}",
        dir.display()
    );
}

/// `retry`: fails with `retry("downstream unavailable")`.
mod retry {
    use super::*;

    #[tokio::test]
    async fn retry_is_503_with_the_plugins_message() {
        let host = TestHost::start(&[plugin("retry", GUEST_RETRY)]).await;
        let response = host.post("/hooks/retry", "{}").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        let body = error_body(response).await;
        assert_eq!(body["route"], "/hooks/retry");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("downstream unavailable"),
            "{body}"
        );
        host.stop().await;
    }
}

/// `reject`: fails with `reject("unsupported event")`.
mod reject {
    use super::*;

    #[tokio::test]
    async fn reject_is_422_with_the_plugins_message() {
        let host = TestHost::start(&[plugin("reject", GUEST_REJECT)]).await;
        let response = host.post("/hooks/reject", "{}").await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = error_body(response).await;
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("unsupported event"),
            "{body}"
        );
        host.stop().await;
    }
}

/// `hostile-message`: `reject`/`retry` with 4 MiB of forged log lines.
mod hostile_message {
    use super::*;
    use crate::support::{Binary, blocking, folders, install};

    /// The host's cap on a plugin's message, plus its note on where it cut.
    const MOST: usize = 1024 + 64;

    #[tokio::test]
    async fn a_huge_message_is_cut_and_its_control_characters_escaped() {
        let host = TestHost::start(&[plugin("hostile", GUEST_HOSTILE_MESSAGE)]).await;
        for (query, status) in [
            ("", StatusCode::UNPROCESSABLE_ENTITY),
            ("?retry", StatusCode::SERVICE_UNAVAILABLE),
        ] {
            let response = host.post(&format!("/hooks/hostile{query}"), "{}").await;
            assert_eq!(response.status(), status);
            let raw = response.bytes().await.unwrap();
            assert!(raw.len() < 2 * MOST, "answer of {} bytes", raw.len());
            let body: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            let error = body["error"].as_str().unwrap();
            assert!(error.contains("hostile\\n2026-01-01T00:00:00Z"), "{error}");
            assert!(
                !error.contains(['\n', '\r', '\u{1b}']),
                "control characters reach the sender: {error:?}"
            );
            assert!(error.contains("[truncated at byte"), "{error}");
        }
        host.stop().await;
    }

    #[test]
    fn a_newline_in_a_message_forges_no_log_line() {
        let (_dir, plugins, data) = folders();
        install(&plugins, &[plugin("hostile", GUEST_HOSTILE_MESSAGE)]);
        let host = Binary::spawn(&plugins, &data, &[]);
        let (status, _) = blocking::post(&host.url("/hooks/hostile"), b"{}".to_vec(), &[]);
        assert_eq!(status, 422);
        std::thread::sleep(Duration::from_millis(200));
        let log = host.log();
        let forged = log
            .lines()
            .filter(|line| line.starts_with("2026-01-01T00:00:00Z"))
            .count();
        assert_eq!(
            forged,
            0,
            "forged log lines; log starts:\n{}",
            log.chars().take(2000).collect::<String>()
        );
        let line = log
            .lines()
            .find(|line| line.contains("plugin call failed"))
            .unwrap_or_else(|| panic!("no log line for the call; log:\n{log}"));
        assert!(
            line.len() < 2 * MOST + 512,
            "log line of {} bytes",
            line.len()
        );
        assert!(log.len() < 64 * 1024, "log of {} bytes", log.len());
    }
}

/// `panicker`: panics, a trap.
mod panicker {
    use super::*;

    #[tokio::test]
    async fn a_panicking_plugin_is_500_without_internals() {
        let host =
            TestHost::start(&[plugin("panicker", GUEST_PANICKER), plugin("echo", ECHO)]).await;
        let response = host.post("/hooks/panicker", "{}").await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = error_body(response).await;
        assert_eq!(
            body["error"], "plugin failed",
            "no trap detail for the sender: {body}"
        );
        // The next delivery gets a fresh instance: the host and the plugin still work.
        assert_eq!(
            host.post("/hooks/panicker", "{}").await.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            host.post("/hooks/echo", "ok").await.status(),
            StatusCode::OK
        );
        host.stop().await;
    }
}

/// `memory-hog`: fills memory until the cap stops it.
mod memory_hog {
    use super::*;

    #[tokio::test]
    async fn a_plugin_growing_memory_past_its_cap_is_500_and_others_answer() {
        let host = TestHost::start(&[
            plugin_with("hog", GUEST_MEMORY_HOG, "[limits]\nmemory = \"16MiB\"\n"),
            plugin("echo", ECHO),
        ])
        .await;
        let response = host.post("/hooks/hog", "{}").await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = error_body(response).await;
        assert_eq!(body["error"], "plugin exceeded its memory limit");
        assert_eq!(
            host.post("/hooks/echo", "ok").await.status(),
            StatusCode::OK
        );
        host.stop().await;
    }
}

/// `looper`: never returns.
mod looper {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_looping_plugin_times_out_without_slowing_another_route() {
        let timeout = Duration::from_millis(1500);
        let host = TestHost::start(&[
            plugin_with("looper", GUEST_LOOPER, "[limits]\ntimeout = \"1500ms\"\n"),
            plugin("echo", ECHO),
        ])
        .await;
        // Two loopers at once, so both worker threads have a busy guest.
        let started = Instant::now();
        let loopers: Vec<_> = (0..2)
            .map(|_| {
                let client = host.client.clone();
                let url = host.url("/hooks/looper");
                tokio::spawn(async move {
                    let response = client.post(url).body("{}").send().await.unwrap();
                    (response.status(), started.elapsed())
                })
            })
            .collect();

        // While they spin, echo keeps answering promptly.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut slowest = Duration::ZERO;
        while started.elapsed() < Duration::from_millis(1200) {
            let sent = Instant::now();
            let response = host.post("/hooks/echo", "still here").await;
            assert_eq!(response.status(), StatusCode::OK);
            slowest = slowest.max(sent.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            slowest < Duration::from_millis(500),
            "echo took {slowest:?} while loopers ran"
        );

        for looper in loopers {
            let (status, elapsed) = looper.await.unwrap();
            assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
            assert!(
                elapsed >= timeout,
                "answered before the timeout: {elapsed:?}"
            );
            assert!(
                elapsed < timeout + Duration::from_secs(1),
                "504 took {elapsed:?}"
            );
        }
        host.stop().await;
    }
}
