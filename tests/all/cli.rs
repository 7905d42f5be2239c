//! The real `hookhost` binary: start-up line, logs, signals, exit codes.

use std::path::Path;
use std::time::Duration;

use hookhost_test_artifacts::{ECHO, GUEST_LOGGER, GUEST_SLEEPER};

use crate::support::{
    Binary, blocking, folders, hookhost, hookhost_command, install, plugin, plugin_with,
    serve_command,
};

#[test]
fn serve_logs_its_address_and_answers() {
    let (_dir, plugins, data) = folders();
    install(&plugins, &[plugin("echo", ECHO)]);
    let host = Binary::spawn(&plugins, &data, &[]);
    let response = blocking::post(&host.url("/hooks/echo"), b"hello".to_vec(), &[]);
    assert_eq!(response.0, 200);
    assert_eq!(response.1, b"hello");
    let log = host.log();
    assert!(log.contains("plugin loaded"), "{log}");
    assert!(
        log.contains("unverified"),
        "an unverified plugin is called out: {log}"
    );
}

#[test]
fn sigterm_finishes_in_flight_deliveries_then_exits_0() {
    let (_dir, plugins, data) = folders();
    install(&plugins, &[plugin("sleeper", GUEST_SLEEPER)]);
    let mut host = Binary::spawn(&plugins, &data, &[]);
    let url = host.url("/hooks/sleeper?ms=1500");
    let in_flight = std::thread::spawn(move || blocking::post(&url, b"{}".to_vec(), &[]));
    std::thread::sleep(Duration::from_millis(400));
    host.signal("TERM");
    // While the delivery is still running, new connections are refused.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !in_flight.is_finished(),
        "the sleeper should still be running"
    );
    assert!(
        std::net::TcpStream::connect(host.addr).is_err(),
        "the listener is closed as soon as shutdown starts"
    );
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(
        status,
        200,
        "in-flight delivery finished: {}",
        String::from_utf8_lossy(&body)
    );
    let exit = host.wait(Duration::from_secs(10));
    assert!(exit.success(), "exit status {exit:?}; log:\n{}", host.log());
}

#[test]
fn sigint_exits_0() {
    let (_dir, plugins, data) = folders();
    install(&plugins, &[plugin("echo", ECHO)]);
    let mut host = Binary::spawn(&plugins, &data, &[]);
    host.signal("INT");
    let exit = host.wait(Duration::from_secs(10));
    assert!(exit.success(), "exit status {exit:?}; log:\n{}", host.log());
}

#[test]
fn a_malformed_manifest_is_logged_with_file_and_field() {
    let (_dir, plugins, data) = folders();
    install(
        &plugins,
        &[
            plugin_with("broken", ECHO, "[limits]\ntimeout = \"soon\"\n"),
            plugin("echo", ECHO),
        ],
    );
    let host = Binary::spawn(&plugins, &data, &[]);
    let log = host.log();
    let line = log
        .lines()
        .find(|line| line.contains("plugin not loaded"))
        .unwrap_or_else(|| panic!("no load error logged:\n{log}"));
    assert!(line.contains("broken.toml"), "{line}");
    assert!(line.contains("limits.timeout"), "{line}");
    assert!(line.contains("5s"), "the fix is suggested: {line}");
    let (status, _) = blocking::post(&host.url("/hooks/echo"), b"x".to_vec(), &[]);
    assert_eq!(status, 200);
}

#[test]
fn a_missing_plugin_folder_fails_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = serve_command(&dir.path().join("nope"), &dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read plugin folder"), "{stderr}");
}

#[test]
fn a_refused_delivery_never_runs_the_plugin() {
    let (_dir, plugins, data) = folders();
    let manifest = "[verify]\nscheme = \"github\"\nsecret = \"file:logger.secret\"\n";
    install(
        &plugins,
        &[plugin_with("logger", GUEST_LOGGER, manifest)
            .with_file("logger.secret", "s3cret-for-logs")],
    );
    let host = Binary::spawn(&plugins, &data, &[]);
    let url = host.url("/hooks/logger");

    let (status, _) = blocking::post(
        &url,
        b"{}".to_vec(),
        &[
            ("x-github-delivery", "refused-1"),
            ("x-hub-signature-256", "sha256=00"),
        ],
    );
    assert_eq!(status, 401);
    let accepted = send(&[
        &url,
        "--scheme",
        "github",
        "--secret",
        "s3cret-for-logs",
        "--data",
        "{}",
        "-H",
        "X-GitHub-Delivery: accepted-1",
    ]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stdout)
    );
    std::thread::sleep(Duration::from_millis(200));

    let log = host.log();
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("refused-1")).collect();
    assert!(
        refused.iter().any(|l| l.contains("verification refused")),
        "{log}"
    );
    assert!(
        !refused.iter().any(|l| l.contains("hookhost::plugin")),
        "the plugin ran for a refused delivery:\n{log}"
    );
    let accepted: Vec<&str> = log.lines().filter(|l| l.contains("accepted-1")).collect();
    assert!(
        accepted.iter().any(|l| l.contains("hookhost::plugin")),
        "{log}"
    );
    assert!(
        !log.contains("s3cret-for-logs"),
        "the secret leaked into the log:\n{log}"
    );
}

fn send(args: &[&str]) -> std::process::Output {
    hookhost_command(["send"]).args(args).output().unwrap()
}

#[test]
fn send_signs_like_the_sender_and_reports_the_answer() {
    let (dir, plugins, data) = folders();
    let manifest = "[verify]\nscheme = \"stripe\"\nsecret = \"file:stripe.secret\"\n";
    install(
        &plugins,
        &[plugin_with("stripe", ECHO, manifest).with_file("stripe.secret", "whsec_test_send")],
    );
    let host = Binary::spawn(&plugins, &data, &[]);
    let url = host.url("/hooks/stripe");
    let body = dir.path().join("event.json");
    std::fs::write(
        &body,
        br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#,
    )
    .unwrap();
    let body = body.to_str().unwrap();

    let ok = send(&[
        &url,
        "--scheme",
        "stripe",
        "--secret",
        "whsec_test_send",
        "--file",
        body,
    ]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.starts_with("200 OK"), "{stdout}");
    assert!(
        stdout.contains(r#"{"id":"evt_1","type":"payment_intent.succeeded"}"#),
        "{stdout}"
    );

    let wrong = send(&[
        &url,
        "--scheme",
        "stripe",
        "--secret",
        "whsec_other",
        "--file",
        body,
    ]);
    let stdout = String::from_utf8_lossy(&wrong.stdout);
    assert_eq!(wrong.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("401"), "{stdout}");
    assert!(stdout.contains("bad signature"), "{stdout}");

    let stale = send(&[
        &url,
        "--scheme",
        "stripe",
        "--secret",
        "whsec_test_send",
        "--file",
        body,
        "--timestamp",
        "1600000000",
    ]);
    let stdout = String::from_utf8_lossy(&stale.stdout);
    assert!(stdout.contains("timestamp outside tolerance"), "{stdout}");
}

/// The `logger` guest, which logs at every level and prints to stdout and
/// stderr: each line lands in the host's log, tagged with its delivery.
pub(crate) mod logger {
    use super::*;

    #[test]
    fn plugin_logs_and_output_are_tagged_with_plugin_and_delivery() {
        let (_dir, plugins, data) = folders();
        install(&plugins, &[plugin("logger", GUEST_LOGGER)]);
        let host = Binary::spawn(&plugins, &data, &[]);
        let (status, _) = blocking::post(
            &host.url("/hooks/logger"),
            b"{}".to_vec(),
            &[("x-github-delivery", "log-test-delivery-7")],
        );
        assert_eq!(status, 200);
        std::thread::sleep(Duration::from_millis(200));
        let log = host.log();
        let tagged: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("log-test-delivery-7") && line.contains("plugin=logger"))
            .collect();
        for expected in ["info", "warn", "error", "stdout", "stderr"] {
            assert!(
                tagged
                    .iter()
                    .any(|line| line.to_lowercase().contains(expected)),
                "no tagged `{expected}` line; log:\n{log}"
            );
        }
    }

    #[test]
    fn json_logs_carry_route_plugin_and_delivery_id_on_every_delivery_line() {
        let (_dir, plugins, data) = folders();
        install(&plugins, &[plugin("logger", GUEST_LOGGER)]);
        let host = Binary::spawn(&plugins, &data, &["--log-format", "json"]);
        let (status, _) = blocking::post(
            &host.url("/hooks/logger"),
            b"{}".to_vec(),
            &[("x-github-delivery", "json-delivery-9")],
        );
        assert_eq!(status, 200);
        std::thread::sleep(Duration::from_millis(200));
        let log = host.log();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
            })
            .collect();
        // Every line logged inside the delivery's span (or a span within it)
        // names the delivery.
        let delivery: Vec<(&serde_json::Value, &serde_json::Value)> = lines
            .iter()
            .filter_map(|line| {
                let span = line["spans"]
                    .as_array()?
                    .iter()
                    .find(|span| span["name"] == "delivery")?;
                Some((line, span))
            })
            .collect();
        assert!(
            delivery
                .iter()
                .any(|(line, _)| line["fields"]["message"] == "answered"),
            "no answered line; log:\n{log}"
        );
        assert!(delivery.len() >= 3, "guest lines missing; log:\n{log}");
        for (line, span) in &delivery {
            assert_eq!(span["route"], "/hooks/logger", "{line}");
            assert_eq!(span["plugin"], "logger", "{line}");
            assert_eq!(span["id"], "json-delivery-9", "{line}");
        }
    }

    /// Later deliveries usually run on a spare instance made after the one
    /// before: its output must still be logged in its own delivery's span.
    #[test]
    fn guest_output_is_logged_in_the_span_of_the_delivery_that_wrote_it() {
        let (_dir, plugins, data) = folders();
        install(&plugins, &[plugin("logger", GUEST_LOGGER)]);
        let host = Binary::spawn(&plugins, &data, &["--log-format", "json"]);
        let ids = ["span-delivery-1", "span-delivery-2", "span-delivery-3"];
        for id in ids {
            let (status, _) = blocking::post(
                &host.url("/hooks/logger"),
                b"{}".to_vec(),
                &[("x-github-delivery", id)],
            );
            assert_eq!(status, 200);
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = host.log();
        let mut checked = 0;
        for line in log.lines() {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            let message = line["fields"]["message"].as_str().unwrap_or_default();
            let Some(id) = ids
                .iter()
                .find(|id| message.contains(&format!("(delivery {id})")))
            else {
                continue;
            };
            let span = line["spans"]
                .as_array()
                .and_then(|spans| spans.iter().find(|span| span["name"] == "delivery"))
                .unwrap_or_else(|| panic!("guest line outside a delivery span: {line}"));
            assert_eq!(span["id"], *id, "{line}");
            checked += 1;
        }
        // Per delivery at least info, warn, error, stdout and stderr.
        assert!(checked >= 15, "{checked} guest lines; log:\n{log}");
    }
}

/// The defaults and the README's `make run` use relative folders
/// (`./plugins`, `./data`): they must work as given, cache included.
#[test]
fn relative_plugin_and_data_folders_work() {
    let (dir, plugins, _data) = folders();
    install(&plugins, &[plugin("echo", ECHO)]);
    let mut command = serve_command(Path::new("plugins"), Path::new("data"));
    command
        .current_dir(dir.path())
        .args(["--max-concurrency", "4"]);
    let host = Binary::start(command);
    let (status, body) = blocking::post(&host.url("/hooks/echo"), b"relative".to_vec(), &[]);
    assert_eq!(status, 200, "{}", host.log());
    assert_eq!(body, b"relative");
    assert!(
        dir.path().join("data/cache").is_dir(),
        "the compile cache is under ./data"
    );
}

#[test]
fn send_signs_twilio_for_the_public_url_the_manifest_names() {
    let (_dir, plugins, data) = folders();
    let manifest = "[verify]\nscheme = \"twilio\"\nsecret = \"file:twilio.secret\"\n\
                    url = \"https://hooks.example.com/twilio/sms\"\n";
    install(
        &plugins,
        &[plugin_with("twilio", ECHO, manifest).with_file("twilio.secret", "twilio-auth-token")],
    );
    let host = Binary::spawn(&plugins, &data, &[]);
    let url = host.url("/hooks/twilio");
    let form = [
        "--data",
        "CallSid=CA1&From=%2B14158675309",
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
    ];

    let mut args = vec![
        url.as_str(),
        "--scheme",
        "twilio",
        "--secret",
        "twilio-auth-token",
    ];
    args.extend(form);
    let unsigned_url = send(&args);
    assert_eq!(
        unsigned_url.status.code(),
        Some(1),
        "signed for the loopback URL, which is not the URL Twilio calls"
    );
    assert!(String::from_utf8_lossy(&unsigned_url.stdout).starts_with("401"));

    args.extend(["--public-url", "https://hooks.example.com/twilio/sms"]);
    let ok = send(&args);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("CallSid=CA1"), "{stdout}");
}

#[test]
fn keygen_then_send_delivers_to_a_key_pair_route() {
    for scheme in ["discord", "standard-webhooks", "sendgrid"] {
        let (dir, plugins, data) = folders();
        let key = dir.path().join(format!("{scheme}.pem"));
        let keygen = hookhost(&["keygen", "--scheme", scheme, "--out", key.to_str().unwrap()]);
        let lines = String::from_utf8_lossy(&keygen.stdout).into_owned();
        assert!(
            keygen.status.success(),
            "{scheme}: {lines}{}",
            String::from_utf8_lossy(&keygen.stderr)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "{scheme}: the private key is the owner's only"
            );
        }
        // keygen's stdout is the manifest's [verify] table, as printed.
        install(&plugins, &[plugin_with("keyed", ECHO, &lines)]);
        let host = Binary::spawn(&plugins, &data, &[]);
        let url = host.url("/hooks/keyed");
        let key_ref = format!("file:{}", key.display());
        let body = r#"{"type":2,"hello":"world"}"#;
        let sent = send(&[&url, "--scheme", scheme, "--key", &key_ref, "--data", body]);
        let stdout = String::from_utf8_lossy(&sent.stdout);
        assert!(
            sent.status.success(),
            "{scheme}: {stdout}{}\n{}",
            String::from_utf8_lossy(&sent.stderr),
            host.log()
        );
        assert!(
            stdout.contains(body),
            "{scheme}: the plugin got the body: {stdout}"
        );

        // Unsigned, the same route refuses.
        let (status, _) = blocking::post(&url, body.as_bytes().to_vec(), &[]);
        assert_eq!(status, 401, "{scheme}");

        // keygen never overwrites a key.
        let again = hookhost(&["keygen", "--scheme", scheme, "--out", key.to_str().unwrap()]);
        assert!(!again.status.success(), "{scheme}");
    }
}

#[test]
fn send_replays_a_handshake_and_the_host_answers_it() {
    let (dir, plugins, data) = folders();
    let key = dir.path().join("discord.pem");
    let keygen = hookhost(&[
        "keygen",
        "--scheme",
        "discord",
        "--out",
        key.to_str().unwrap(),
    ]);
    assert!(keygen.status.success());
    let lines = String::from_utf8_lossy(&keygen.stdout).into_owned();
    install(&plugins, &[plugin_with("bot", ECHO, &lines)]);
    let host = Binary::spawn(&plugins, &data, &[]);
    let url = host.url("/hooks/bot");
    let key_ref = format!("file:{}", key.display());
    let sent = send(&[
        &url,
        "--scheme",
        "discord",
        "--key",
        &key_ref,
        "--handshake",
        "discord-ping",
    ]);
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(stdout.starts_with("200"), "{stdout}");
    assert!(
        stdout.contains("x-content-type-options: nosniff"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with(r#"{"type":1}"#),
        "the host's PONG: {stdout}"
    );
}

#[test]
fn check_vectors_runs_the_published_vectors_against_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("gh.toml");
    std::fs::write(
        &good,
        "[verify]\nscheme = \"github\"\nsecret = \"env:UNUSED_BY_VECTORS\"\n",
    )
    .unwrap();
    let ran = hookhost(&["check", "--vectors", "--manifest", good.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        stdout.contains("ok      github vector: GitHub docs"),
        "{stdout}"
    );

    // Twilio signs the public URL: a manifest naming another one fails.
    let bad = dir.path().join("sms.toml");
    std::fs::write(
        &bad,
        "[verify]\nscheme = \"twilio\"\nsecret = \"x\"\nurl = \"https://other.example.com/sms\"\n",
    )
    .unwrap();
    let ran = hookhost(&["check", "--vectors", "--manifest", bad.to_str().unwrap()]);
    assert_eq!(ran.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&ran.stdout).contains("FAILED"));
}
