//! The plugin folder as an operator (or an accident) can leave it: things
//! that are not files, the folder itself deleted and recreated, and routes
//! no request can reach. Each test runs the real host over real files.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hookhost::registry::{Changes, Registry};
use hookhost_test_artifacts::ECHO;
use reqwest::StatusCode;

use crate::support::{
    Binary, deploy, eventually, folders, install, plugin, plugin_with, shared_cache, test_runtime,
};

/// Generous: CI is a busy 2-core machine.
const PATIENCE: Duration = Duration::from_secs(20);

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

async fn status(host: &Binary, path: &str) -> StatusCode {
    reqwest::Client::new()
        .post(host.url(path))
        .body("ping")
        .send()
        .await
        .unwrap()
        .status()
}

async fn wait_for_status(host: &Binary, path: &str, want: StatusCode) {
    eventually(PATIENCE, &format!("{path} answering {want}"), || async {
        (status(host, path).await == want).then_some(())
    })
    .await;
}

/// A FIFO has no end: opening it for reading waits for a writer, forever,
/// and a device such as `/dev/zero` never stops giving bytes. Neither may
/// wedge hot reload or shutdown.
#[tokio::test]
async fn a_fifo_in_the_plugin_folder_leaves_reload_working_and_sigterm_exiting_0() {
    let (_dir, plugins, data) = folders();
    install(&plugins, &[plugin("first", ECHO)]);
    let mut host = Binary::spawn(&plugins, &data, &[]);
    assert_eq!(status(&host, "/hooks/first").await, StatusCode::OK);

    mkfifo(&plugins.join("wedge.wasm"));
    mkfifo(&plugins.join("piped.toml"));
    std::os::unix::fs::symlink("/dev/zero", plugins.join("zero.wasm")).unwrap();
    let fifo = plugins.join("linked-fifo");
    mkfifo(&fifo);
    std::os::unix::fs::symlink(&fifo, plugins.join("linked.wasm")).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for file in ["wedge.wasm", "piped.toml", "zero.wasm", "linked.wasm"] {
        std::fs::remove_file(plugins.join(file)).unwrap();
    }

    deploy(&plugins, "after", &std::fs::read(ECHO).unwrap());
    wait_for_status(&host, "/hooks/after", StatusCode::OK).await;
    assert_eq!(status(&host, "/hooks/first").await, StatusCode::OK);
    let log = host.log();
    for (file, what) in [
        ("wedge.wasm", "is a FIFO (named pipe), not a regular file"),
        ("zero.wasm", "is a character device, not a regular file"),
        ("linked.wasm", "is a FIFO (named pipe), not a regular file"),
    ] {
        assert!(
            log.lines()
                .any(|line| line.contains(file) && line.contains(what)),
            "{file}: {what}\n{log}"
        );
    }

    host.signal("TERM");
    let exit = host.wait(Duration::from_secs(15));
    assert!(exit.success(), "{exit:?}\n{}", host.log());
}

/// `rm -rf plugins && mkdir plugins && cp ...`, and a folder swapped by
/// `mv`: the watch follows the folder at the path, not the one it started on.
#[tokio::test]
async fn a_deleted_and_recreated_plugin_folder_is_watched_again() {
    let (dir, plugins, data) = folders();
    install(&plugins, &[plugin("before", ECHO)]);
    let host = Binary::spawn(&plugins, &data, &[]);
    assert_eq!(status(&host, "/hooks/before").await, StatusCode::OK);

    std::fs::remove_dir_all(&plugins).unwrap();
    let gone = format!(
        "plugin folder is gone: the plugins loaded keep serving, nothing is reloaded until it is back (checked every second) folder={}",
        plugins.display()
    );
    eventually(PATIENCE, "the folder's removal is logged", || async {
        host.log().contains(&gone).then_some(())
    })
    .await;
    // A SIGHUP while the folder is gone changes nothing for later.
    host.signal("HUP");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        host.log().matches(&gone).count(),
        1,
        "logged once:\n{}",
        host.log()
    );

    std::fs::create_dir(&plugins).unwrap();
    deploy(&plugins, "after", &std::fs::read(ECHO).unwrap());
    wait_for_status(&host, "/hooks/after", StatusCode::OK).await;
    // What is in the folder now is what is served.
    wait_for_status(&host, "/hooks/before", StatusCode::NOT_FOUND).await;

    // Swapped within one check: another folder under the same name.
    let staged = dir.path().join("plugins.next");
    std::fs::create_dir(&staged).unwrap();
    install(&staged, &[plugin("swapped", ECHO)]);
    std::fs::rename(&plugins, dir.path().join("plugins.old")).unwrap();
    std::fs::rename(&staged, &plugins).unwrap();
    wait_for_status(&host, "/hooks/swapped", StatusCode::OK).await;
    deploy(&plugins, "later", &std::fs::read(ECHO).unwrap());
    wait_for_status(&host, "/hooks/later", StatusCode::OK).await;
}

/// Request paths arrive percent-encoded ASCII and routes match byte for
/// byte: a route with other characters would load and never be reached.
#[tokio::test]
async fn a_non_ascii_route_is_refused_at_load_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    install(
        dir.path(),
        &[
            plugin_with("cafe", ECHO, "route = \"/hooks/café\"\n"),
            plugin_with("plain", ECHO, "route = \"/hooks/cafe\"\n"),
        ],
    );
    let runtime = Arc::new(test_runtime(2, Some(shared_cache())));
    let registry = Registry::new();
    let report = registry
        .reload(&runtime, dir.path(), Changes::Folder)
        .await
        .unwrap();
    assert_eq!(report.loaded, ["plain"]);
    let error = &report.failed["cafe"];
    assert_eq!(error.file, dir.path().join("cafe.toml"));
    assert!(
        error
            .reason
            .starts_with("`route`: \"/hooks/café\" has characters other than ASCII"),
        "{error}"
    );
    assert!(error.reason.contains("use ASCII letters"), "{error}");
    assert!(registry.lookup("/hooks/cafe").is_some());
}
