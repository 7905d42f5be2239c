//! Deploying plugins through the admin API (`PUT /plugins/{name}`, versions,
//! rollback, undeploy) and `hookhost deploy`: what serves afterwards, on a
//! real host, with real compiled plugins.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use hookhost::deploy::{Deployments as _, SqliteDeployments};
use hookhost_test_artifacts::{ECHO, GUEST_CONFIG};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Binary, TestHost, blocking, eventually, folders, hookhost, plugin};

/// The `config` guest answers its `[config]` table: `version` tells which
/// deployed version served a request.
fn manifest(version: &str) -> String {
    format!("[config]\nversion = \"{version}\"\n")
}

fn body(wasm: &[u8], manifest: Option<&str>) -> Value {
    json!({
        "component_base64": base64::engine::general_purpose::STANDARD.encode(wasm),
        "manifest": manifest,
    })
}

async fn put(host: &TestHost, name: &str, body: &Value) -> (StatusCode, Value) {
    let response = host
        .client
        .put(host.admin_url(&format!("/plugins/{name}")))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn deploy_config(host: &TestHost, name: &str, version: &str) -> (StatusCode, Value) {
    let wasm = std::fs::read(GUEST_CONFIG).unwrap();
    put(host, name, &body(&wasm, Some(&manifest(version)))).await
}

/// The `version` the plugin on `/hooks/NAME` answers with, or the status
/// when it does not answer 200.
async fn served(host: &TestHost, name: &str) -> Result<String, StatusCode> {
    let response = host.post(&format!("/hooks/{name}"), "{}").await;
    if response.status() != StatusCode::OK {
        return Err(response.status());
    }
    let answer: Value = response.json().await.unwrap();
    Ok(answer["all"]["version"]
        .as_str()
        .unwrap_or("(none)")
        .to_owned())
}

async fn delete(host: &TestHost, path: &str) -> (StatusCode, Value) {
    let response = host
        .client
        .delete(host.admin_url(path))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn plugin_entry<'a>(plugins: &'a Value, name: &str) -> &'a Value {
    plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {plugins}"))
}

#[tokio::test]
async fn deploy_redeploy_refuse_broken_list_roll_back_and_undeploy() {
    let host = TestHost::start_with_admin(&[], |_| {}).await;
    assert_eq!(served(&host, "cfg").await, Err(StatusCode::NOT_FOUND));

    let (status, one) = deploy_config(&host, "cfg", "1").await;
    assert_eq!(status, StatusCode::CREATED, "{one}");
    assert_eq!(one["name"], "cfg");
    assert_eq!(one["version"], 1);
    assert_eq!(one["live"], true);
    assert_eq!(one["new"], true);
    assert_eq!(one["sha256"].as_str().unwrap().len(), 64, "{one}");
    // Loaded before the answer: no waiting.
    assert_eq!(served(&host, "cfg").await.as_deref(), Ok("1"));

    // The same bytes again: the live version, nothing new.
    let (status, again) = deploy_config(&host, "cfg", "1").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["version"].clone(), again["new"].clone()),
        (json!(1), json!(false))
    );

    let (status, two) = deploy_config(&host, "cfg", "2").await;
    assert_eq!(status, StatusCode::CREATED, "{two}");
    assert_eq!(two["version"], 2);
    assert_ne!(two["sha256"], one["sha256"]);
    assert_eq!(served(&host, "cfg").await.as_deref(), Ok("2"));

    // A broken component: refused with the registry's reason, nothing stored.
    let (status, broken) = put(&host, "cfg", &body(b"not a component", None)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{broken}");
    assert_eq!(broken["file"], "cfg.wasm", "{broken}");
    assert!(!broken["reason"].as_str().unwrap().is_empty(), "{broken}");
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .contains("nothing was deployed"),
        "{broken}"
    );
    // A bad manifest: its file and field.
    let wasm = std::fs::read(GUEST_CONFIG).unwrap();
    let (status, bad) = put(&host, "cfg", &body(&wasm, Some("mode = \"sometimes\"\n"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(bad["file"], "cfg.toml", "{bad}");
    assert!(bad["reason"].as_str().unwrap().contains("mode"), "{bad}");
    assert_eq!(served(&host, "cfg").await.as_deref(), Ok("2"));

    let (status, versions) = host.admin_get("/plugins/cfg/versions").await;
    assert_eq!(status, StatusCode::OK, "{versions}");
    assert_eq!(versions["name"], "cfg");
    let list: Vec<(i64, bool)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["live"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        list,
        [(2, true), (1, false)],
        "newest first, no version for the refused ones"
    );
    let first = &versions["versions"][1];
    assert!(
        first["deployed_at"].as_str().unwrap().ends_with('Z'),
        "{first}"
    );
    assert!(
        !first["deployed_by"].as_str().unwrap().is_empty(),
        "{first}"
    );

    let (_, plugins) = host.admin_get("/plugins").await;
    let cfg = plugin_entry(&plugins, "cfg");
    assert_eq!(cfg["source"], "deployed", "{cfg}");
    assert_eq!(cfg["version"], 2, "{cfg}");

    // Rollback: the newest older version, no new number.
    let (status, back) = host.admin_post("/plugins/cfg/rollback").await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(
        (back["version"].clone(), back["live"].clone()),
        (json!(1), json!(true))
    );
    assert_eq!(served(&host, "cfg").await.as_deref(), Ok("1"));
    let (status, oldest) = host.admin_post("/plugins/cfg/rollback").await;
    assert_eq!(status, StatusCode::CONFLICT, "{oldest}");
    let (status, _) = host.admin_post("/plugins/cfg/rollback?to=9").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, forward) = host.admin_post("/plugins/cfg/rollback?to=2").await;
    assert_eq!(
        (status, forward["version"].clone()),
        (StatusCode::OK, json!(2))
    );
    assert_eq!(served(&host, "cfg").await.as_deref(), Ok("2"));
    let (_, versions) = host.admin_get("/plugins/cfg/versions").await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);

    // Undeploy: 404 on the route, versions kept, a second undeploy is 404.
    let (status, gone) = delete(&host, "/plugins/cfg").await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!(served(&host, "cfg").await, Err(StatusCode::NOT_FOUND));
    let (status, _) = delete(&host, "/plugins/cfg").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, versions) = host.admin_get("/plugins/cfg/versions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        versions["versions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["live"] == false)
    );
    // And a rollback makes one live again.
    let (status, _) = host.admin_post("/plugins/cfg/rollback?to=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served(&host, "cfg").await.as_deref(), Ok("1"));
    host.stop().await;
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_stored() {
    let host = TestHost::start_with_admin(&[plugin("echo", ECHO)], |config| {
        // Above echo in base64, below the body sent next.
        config.max_deploy_body = 512 * 1024;
    })
    .await;
    let big = body(&vec![0u8; 1024 * 1024], None);
    let (status, answer) = put(&host, "big", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");

    let response = host
        .client
        .put(host.admin_url("/plugins/x"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = host
        .client
        .put(host.admin_url("/plugins/x"))
        .header("content-type", "multipart/form-data; boundary=b")
        .body("--b--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (status, answer) = put(&host, "a.b", &body(b"x", None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("not allowed"),
        "{answer}"
    );

    // A plugin-folder name is the folder's.
    let echo = std::fs::read(ECHO).unwrap();
    let (status, answer) = put(&host, "echo", &body(&echo, None)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("plugin folder"),
        "{answer}"
    );

    for path in ["/plugins/echo/versions", "/plugins/none/versions"] {
        let (status, _) = host.admin_get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = host.admin_post("/plugins/none/rollback").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = delete(&host, "/plugins/echo").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "folder plugins are not undeployed"
    );
    assert_eq!(
        host.post("/hooks/echo", "hi").await.status(),
        StatusCode::OK
    );
    host.stop().await;
}

#[tokio::test]
async fn the_live_version_serves_after_a_restart_and_stale_files_do_not() {
    let data = tempfile::tempdir().unwrap();
    let at = |config: &mut hookhost::config::HostConfig| config.data_dir = data.path().to_owned();
    let host = TestHost::start_with_admin(&[], at).await;
    deploy_config(&host, "cfg", "1").await;
    deploy_config(&host, "cfg", "2").await;
    let (status, _) = host.admin_post("/plugins/cfg/rollback").await;
    assert_eq!(status, StatusCode::OK);
    deploy_config(&host, "other", "x").await;
    let (status, _) = delete(&host, "/plugins/other").await;
    assert_eq!(status, StatusCode::OK);
    host.stop().await;
    // Files the store does not have live: left by a crash, or by hand.
    let deployed = data.path().join("deployed");
    std::fs::copy(ECHO, deployed.join("stale.wasm")).unwrap();
    std::fs::copy(ECHO, deployed.join("other.wasm")).unwrap();

    let host = TestHost::start_with_admin(&[], at).await;
    assert_eq!(served(&host, "cfg").await.as_deref(), Ok("1"));
    assert_eq!(served(&host, "stale").await, Err(StatusCode::NOT_FOUND));
    assert_eq!(served(&host, "other").await, Err(StatusCode::NOT_FOUND));
    assert!(!deployed.join("stale.wasm").exists());
    let (_, versions) = host.admin_get("/plugins/cfg/versions").await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
    host.stop().await;
}

#[tokio::test]
async fn a_change_in_the_store_loads_within_the_poll_interval() {
    let data = tempfile::tempdir().unwrap();
    let host = TestHost::start_with_admin(&[], |config| {
        config.data_dir = data.path().to_owned();
        config.deploy_poll = Duration::from_millis(100);
    })
    .await;
    // What another host of a fleet does: write to the shared store.
    let store = SqliteDeployments::open(data.path()).unwrap();
    let wasm = std::fs::read(GUEST_CONFIG).unwrap();
    store
        .publish("cfg", &wasm, Some(&manifest("elsewhere")), "host-b")
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the version published elsewhere serves",
        || async { (served(&host, "cfg").await.as_deref() == Ok("elsewhere")).then_some(()) },
    )
    .await;
    store.undeploy("cfg").unwrap();
    eventually(
        Duration::from_secs(10),
        "the undeployed plugin stops",
        || async { (served(&host, "cfg").await == Err(StatusCode::NOT_FOUND)).then_some(()) },
    )
    .await;
    host.stop().await;
}

#[tokio::test]
async fn a_name_both_in_the_folder_and_deployed_is_a_clash_and_the_folder_one_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    {
        let store = SqliteDeployments::open(data.path()).unwrap();
        let wasm = std::fs::read(GUEST_CONFIG).unwrap();
        store
            .publish("both", &wasm, Some(&manifest("deployed")), "elsewhere")
            .unwrap();
    }
    let host = TestHost::start_with_admin(&[plugin("both", ECHO)], |config| {
        config.data_dir = data.path().to_owned();
    })
    .await;
    let echoed = host.post("/hooks/both", "from the folder").await;
    assert_eq!(echoed.status(), StatusCode::OK);
    assert_eq!(echoed.text().await.unwrap(), "from the folder");

    let (_, plugins) = host.admin_get("/plugins").await;
    let both = plugin_entry(&plugins, "both");
    assert_eq!(both["serving"], true, "{both}");
    assert_eq!(both["source"], "folder", "{both}");
    let reason = both["last_error"]["reason"].as_str().unwrap_or_default();
    assert_eq!(
        reason, "plugin both is both in the plugin folder and deployed; remove one",
        "{both}"
    );

    // Removing the folder's copy lets the deployed one serve.
    std::fs::remove_file(host.plugins.join("both.wasm")).unwrap();
    eventually(
        Duration::from_secs(10),
        "the deployed version takes over",
        || async { (served(&host, "both").await.as_deref() == Ok("deployed")).then_some(()) },
    )
    .await;
    let (_, plugins) = host.admin_get("/plugins").await;
    let both = plugin_entry(&plugins, "both");
    assert_eq!(both["source"], "deployed", "{both}");
    assert_eq!(both["last_error"], Value::Null, "{both}");

    // Now the deployed one is running: a copy put back in the folder waits.
    crate::support::deploy(&host.plugins, "both", &std::fs::read(ECHO).unwrap());
    eventually(
        Duration::from_secs(10),
        "the folder copy reports the clash",
        || async {
            let (_, plugins) = host.admin_get("/plugins").await;
            let both = plugin_entry(&plugins, "both").clone();
            both["last_error"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("both in the plugin folder and deployed"))
                .then_some(both)
        },
    )
    .await;
    assert_eq!(served(&host, "both").await.as_deref(), Ok("deployed"));
    host.stop().await;
}

fn run_ok(args: &[&str]) -> String {
    let out = hookhost(args);
    assert!(
        out.status.success(),
        "{args:?}: exit {:?}; stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn served_by(host: &Binary, name: &str) -> String {
    let (status, body) = blocking::post(&host.url(&format!("/hooks/{name}")), b"{}".to_vec(), &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    answer["all"]["version"].as_str().unwrap().to_owned()
}

fn write_plugin(dir: &Path, name: &str, version: &str) -> String {
    let wasm = dir.join(format!("{name}.wasm"));
    std::fs::copy(GUEST_CONFIG, &wasm).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), manifest(version)).unwrap();
    wasm.display().to_string()
}

#[test]
fn deploy_command_deploys_refuses_lists_and_rolls_back() {
    let (dir, plugins, data) = folders();
    let host = Binary::spawn(&plugins, &data, &["--admin", "127.0.0.1:0"]);
    let admin = format!("http://{}", host.admin_addr());
    let build = dir.path().join("build");
    std::fs::create_dir(&build).unwrap();

    // The manifest beside the component is found.
    let wasm = write_plugin(&build, "cfg", "1");
    let out = run_ok(&["deploy", &wasm, "--admin", &admin]);
    assert!(out.contains("deployed cfg version 1 (new"), "{out}");
    assert_eq!(served_by(&host, "cfg"), "1");
    let out = run_ok(&["deploy", &wasm, "--admin", &admin]);
    assert!(out.contains("already live"), "{out}");

    // --name and --manifest.
    let other = build.join("v2.toml");
    std::fs::write(&other, manifest("2")).unwrap();
    let other = other.display().to_string();
    let out = run_ok(&[
        "deploy",
        &wasm,
        "--manifest",
        &other,
        "--name",
        "cfg",
        "--admin",
        &admin,
    ]);
    assert!(out.contains("deployed cfg version 2 (new"), "{out}");
    assert_eq!(served_by(&host, "cfg"), "2");
    let table = run_ok(&["plugins", "--admin", &admin]);
    let row = table.lines().find(|l| l.starts_with("cfg ")).unwrap();
    assert!(
        row.contains("deployed v2") && row.contains("/hooks/cfg"),
        "{table}"
    );

    // Refused: the host's reason, exit 1.
    let broken = build.join("broken.wasm");
    std::fs::write(&broken, b"not a component").unwrap();
    let out = hookhost(&[
        "deploy",
        broken.to_str().unwrap(),
        "--name",
        "cfg",
        "--admin",
        &admin,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("422") && stderr.contains("cfg.wasm"),
        "{stderr}"
    );
    assert_eq!(served_by(&host, "cfg"), "2");

    let table = run_ok(&["deploy", "--versions", "cfg", "--admin", &admin]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("VERSION"), "{table}");
    assert!(
        lines[1].starts_with("2 ") && lines[1].contains("live"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("1 ") && !lines[2].contains("live"),
        "{table}"
    );

    let out = run_ok(&["deploy", "--rollback", "cfg", "--admin", &admin]);
    assert!(out.contains("version 1 is live"), "{out}");
    assert_eq!(served_by(&host, "cfg"), "1");
    let out = run_ok(&[
        "deploy",
        "--rollback",
        "cfg",
        "--to",
        "2",
        "--admin",
        &admin,
    ]);
    assert!(out.contains("version 2 is live"), "{out}");
    assert_eq!(served_by(&host, "cfg"), "2");

    let out = run_ok(&["deploy", "--undeploy", "cfg", "--admin", &admin]);
    assert!(out.contains("undeployed cfg"), "{out}");
    let (status, _) = blocking::post(&host.url("/hooks/cfg"), b"{}".to_vec(), &[]);
    assert_eq!(status, 404);
    let out = hookhost(&["deploy", "--undeploy", "cfg", "--admin", &admin]);
    assert_eq!(out.status.code(), Some(1));
}
