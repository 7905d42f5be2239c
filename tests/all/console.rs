//! `hookhost plugins` and `hookhost events list|show|replay`: the real
//! binary against a real host's admin API.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use hookhost_test_artifacts::{ECHO, GUEST_REJECT};
use serde_json::Value;

use crate::support::{Binary, blocking, folders, hookhost, install, plugin, plugin_with};

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}; stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn start(plugins: &Path, data: &Path, token_file: Option<&Path>) -> (Binary, String) {
    install(
        plugins,
        &[
            plugin("echo", ECHO),
            plugin_with("reject", GUEST_REJECT, "mode = \"queue\"\n"),
        ],
    );
    std::fs::write(plugins.join("broken.wasm"), b"not a component").unwrap();
    let token = token_file.map(|path| format!("file:{}", path.display()));
    let mut args = vec!["--admin", "127.0.0.1:0"];
    if let Some(token) = &token {
        args.extend(["--admin-token", token.as_str()]);
    }
    let host = Binary::spawn(plugins, data, &args);
    let admin = format!("http://{}", host.admin_addr());
    (host, admin)
}

fn dead_event(host: &Binary, admin: &str, id: &str) {
    let (status, _) = blocking::post(
        &host.url("/hooks/reject"),
        b"{}".to_vec(),
        &[("idempotency-key", id)],
    );
    assert_eq!(status, 202);
    wait_dead(admin, id);
}

fn wait_dead(admin: &str, id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = hookhost(&[
            "events", "list", "--admin", admin, "--status", "dead", "--json",
        ]);
        if stdout(&out).contains(id) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{id} never dead");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn plugins_and_events_commands_show_and_replay_through_the_admin_api() {
    let (_dir, plugins, data) = folders();
    let (host, admin) = start(&plugins, &data, None);

    let table = stdout(&hookhost(&["plugins", "--admin", &admin]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{table}");
    let echo = lines.iter().find(|l| l.starts_with("echo ")).unwrap();
    assert!(
        echo.contains("/hooks/echo") && echo.contains("sync"),
        "{table}"
    );
    let broken = lines.iter().find(|l| l.starts_with("broken ")).unwrap();
    assert!(
        broken.contains("(not serving)") && broken.contains("broken.wasm"),
        "{table}"
    );
    let json: Value = serde_json::from_str(&stdout(&hookhost(&[
        "plugins", "--admin", &admin, "--json",
    ])))
    .unwrap();
    assert_eq!(json["plugins"].as_array().unwrap().len(), 3, "{json}");

    dead_event(&host, &admin, "cli-dead-1");
    let list = stdout(&hookhost(&[
        "events", "list", "--admin", &admin, "--status", "dead",
    ]));
    let row = list.lines().find(|l| l.starts_with("cli-dead-1")).unwrap();
    assert!(
        row.contains("/hooks/reject") && row.contains("dead"),
        "{list}"
    );

    let shown: Value = serde_json::from_str(&stdout(&hookhost(&[
        "events",
        "show",
        "cli-dead-1",
        "--admin",
        &admin,
    ])))
    .unwrap();
    assert_eq!(shown["status"], "dead");
    assert_eq!(shown["request"]["path"], "/hooks/reject");

    let replayed = stdout(&hookhost(&[
        "events",
        "replay",
        "cli-dead-1",
        "--admin",
        &admin,
    ]));
    assert!(
        replayed.starts_with("replayed cli-dead-1 on /hooks/reject"),
        "{replayed}"
    );
    // Rejected again: dead again, once more through the plugin.
    wait_dead(&admin, "cli-dead-1");

    // Unknown ids fail with the API's message and exit 1.
    let missing = hookhost(&["events", "show", "nope", "--admin", &admin]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("404") && stderr.contains("no event with id nope"),
        "{stderr}"
    );
    drop(host);
}

#[test]
fn events_replay_dead_replays_a_routes_dead_events_and_prints_the_count() {
    let (_dir, plugins, data) = folders();
    let (host, admin) = start(&plugins, &data, None);
    dead_event(&host, &admin, "bulk-1");
    dead_event(&host, &admin, "bulk-2");

    let replayed = stdout(&hookhost(&[
        "events",
        "replay",
        "--dead",
        "--route",
        "/hooks/reject",
        "--admin",
        &admin,
    ]));
    assert_eq!(
        replayed,
        "replayed 2 dead events on /hooks/reject, due now\n"
    );
    // Rejected again by the plugin: dead again, and replayed again.
    wait_dead(&admin, "bulk-1");
    wait_dead(&admin, "bulk-2");
    let json: Value = serde_json::from_str(&stdout(&hookhost(&[
        "events", "replay", "--dead", "--admin", &admin, "--json",
    ])))
    .unwrap();
    assert!(json["replayed"].as_u64().is_some(), "{json}");
    let none = stdout(&hookhost(&[
        "events",
        "replay",
        "--dead",
        "--route",
        "/hooks/echo",
        "--admin",
        &admin,
    ]));
    assert_eq!(none, "replayed 0 dead events on /hooks/echo, due now\n");

    // An id or --dead, not both, not neither.
    for args in [
        &["events", "replay"][..],
        &["events", "replay", "bulk-1", "--dead"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--admin", admin.as_str()]);
        let out = hookhost(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    drop(host);
}

#[test]
fn the_token_is_sent_from_env_or_file_and_refused_without() {
    let (dir, plugins, data) = folders();
    let token = dir.path().join("token");
    std::fs::write(&token, "cli-s3cret\n").unwrap();
    let (host, admin) = start(&plugins, &data, Some(&token));

    let refused = hookhost(&["plugins", "--admin", &admin]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("401"), "{stderr}");

    let file = format!("file:{}", token.display());
    let table = stdout(&hookhost(&["plugins", "--admin", &admin, "--token", &file]));
    assert!(table.contains("/hooks/echo"), "{table}");

    let inline = hookhost(&["plugins", "--admin", &admin, "--token", "cli-s3cret"]);
    assert_eq!(inline.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&inline.stderr).contains("cli-s3cret"));
    drop(host);
}
