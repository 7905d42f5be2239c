//! `hookhost new NAME --lang rust|python|js`: each project is scaffolded by
//! the real binary, built by its own `make` with the real toolchain (the
//! project-local componentize-py / componentize-js of this repository, and
//! cargo), served by the real host, and answers `hookhost send`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{TestHost, hookhost_command, plugin_with, precompile};

/// Scaffolds, builds, serves and calls a `lang` plugin named `name`.
async fn scaffold_build_and_call(name: &str, lang: &str) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("src").join(name);

    let out = hookhost_command(["new", name, "--lang", lang, "--dir"])
        .arg(&project)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hookhost new: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("make"), "{stdout}");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let send_line = format!("hookhost send http://127.0.0.1:8080/hooks/{name}");
    assert!(
        readme.contains(&send_line),
        "the README says how to try it:\n{readme}"
    );

    // A second run refuses to touch the folder.
    let again = hookhost_command(["new", name, "--lang", lang, "--dir"])
        .arg(&project)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    build(&project, lang).await;
    let wasm = project.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "make wrote no {}", wasm.display());
    let wasm = wasm.to_str().unwrap().to_owned();
    let manifest = std::fs::read_to_string(project.join(format!("{name}.toml"))).unwrap();

    precompile(&wasm).await;
    let host = TestHost::start(&[plugin_with(name, &wasm, &manifest)]).await;
    // The README's way to try it: `hookhost send` (the real binary).
    let url = host.url(&format!("/hooks/{name}"));
    let send = tokio::task::spawn_blocking(move || {
        hookhost_command(["send", &url, "--data", r#"{"name":"hookhost"}"#])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&send.stdout);
    assert!(
        send.status.success(),
        "hookhost send: {stdout}{}",
        String::from_utf8_lossy(&send.stderr)
    );
    assert!(stdout.starts_with("200 OK"), "{stdout}");
    let body: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(body["plugin"], name, "{body}");
    assert_eq!(body["hello"], "hookhost", "{body}");
    assert!(
        body["delivery"].as_str().is_some_and(|id| !id.is_empty()),
        "{body}"
    );

    // The starter rejects a body that is not JSON (422).
    let response = host.post(&format!("/hooks/{name}"), "not json").await;
    assert_eq!(response.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    host.stop().await;
}

/// Runs the project's `make`, with the tools this repository installed (so
/// nothing is downloaded per test) and, for Rust, a target folder shared by
/// test runs (wit-bindgen compiles once) and this workspace's lock file (the
/// same crate versions, already fetched).
async fn build(project: &Path, lang: &str) {
    let mut make = Command::new("make");
    make.current_dir(project)
        .arg(format!(
            "COMPONENTIZE_PY={}",
            hookhost_test_artifacts::COMPONENTIZE_PY
        ))
        .arg(format!(
            "COMPONENTIZE_JS={}",
            hookhost_test_artifacts::COMPONENTIZE_JS
        ));
    if lang == "rust" {
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
        make.arg(format!("CARGO_TARGET_DIR={}", target.display()));
        let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
        std::fs::copy(lock, project.join("Cargo.lock")).unwrap();
    }
    let out = tokio::task::spawn_blocking(move || make.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "make in the {lang} project failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn new_rust_plugin_builds_serves_and_answers() {
    scaffold_build_and_call("hello-rust", "rust").await;
}

#[tokio::test]
async fn new_python_plugin_builds_serves_and_answers() {
    scaffold_build_and_call("hello-python", "python").await;
}

#[tokio::test]
async fn new_js_plugin_builds_serves_and_answers() {
    scaffold_build_and_call("hello-js", "js").await;
}
