//! What a plugin manifest's `env:`/`file:` references may read, through the
//! real host binary: `file:` only inside the secrets folder (`--secrets-dir`,
//! default the plugin folder), never the host's own variables or secrets.

use std::time::Duration;

use hookhost_test_artifacts::ECHO;
use reqwest::StatusCode;

use crate::support::{Binary, eventually, folders, install, plugin_with};

const PATIENCE: Duration = Duration::from_secs(20);

async fn status(host: &Binary, path: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .post(host.url(path))
        .header("authorization", format!("Bearer {token}"))
        .body("ping")
        .send()
        .await
        .unwrap()
        .status()
}

/// The log line of plugin `name`'s refused load.
fn refusal(log: &str, name: &str) -> String {
    log.lines()
        .find(|line| {
            line.contains("plugin not loaded") && line.contains(&format!("plugin={name} "))
        })
        .unwrap_or_else(|| panic!("no load error for {name}:\n{log}"))
        .to_owned()
}

#[tokio::test]
async fn manifest_references_stay_in_the_secrets_folder_and_off_the_hosts_own() {
    let (dir, plugins, data) = folders();
    std::fs::write(dir.path().join("outside.txt"), "not yours\n").unwrap();
    std::fs::write(dir.path().join("admin.token"), "admin-file-token\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), plugins.join("link.txt")).unwrap();
    let config = |reference: &str| format!("[config]\nx = \"{reference}\"\n");
    let refused = [
        ("hostvar", config("env:HOOKHOST_ADMIN_TOKEN")),
        ("anyhost", config("env:HOOKHOST_SURELY_UNSET")),
        ("tokenvar", config("env:OPS_ADMIN_TOKEN")),
        ("environ", config("file:/proc/self/environ")),
        ("dotdot", config("file:../outside.txt")),
        ("symlink", config("file:link.txt")),
    ];
    for (name, manifest) in &refused {
        install(&plugins, &[plugin_with(name, ECHO, manifest)]);
    }
    // Allowed: a variable of the plugin's own, and a file in the folder.
    std::fs::write(plugins.join("github.secret"), "gh-secret\n").unwrap();
    install(
        &plugins,
        &[plugin_with(
            "allowed",
            ECHO,
            "[config]\nx = \"env:PLUGIN_OWN_VALUE\"\n\
             [verify]\nscheme = \"token\"\nsecret = \"file:github.secret\"\n",
        )],
    );
    let mut command = Binary::command(
        &plugins,
        &data,
        &[
            "--admin",
            "127.0.0.1:0",
            "--admin-token",
            "env:OPS_ADMIN_TOKEN",
        ],
    );
    command
        .env("OPS_ADMIN_TOKEN", "admin-env-token")
        .env("PLUGIN_OWN_VALUE", "fine");
    let host = Binary::start(command);

    assert_eq!(
        status(&host, "/hooks/allowed", "gh-secret").await,
        StatusCode::OK
    );
    let log = host.log();
    for (name, _) in &refused {
        assert_eq!(
            status(&host, &format!("/hooks/{name}"), "-").await,
            StatusCode::NOT_FOUND,
            "{name} must not load:\n{log}"
        );
        let line = refusal(&log, name);
        assert!(
            line.contains(&format!(
                "file={}",
                plugins.join(format!("{name}.toml")).display()
            )),
            "names the manifest: {line}"
        );
        assert!(line.contains("`config.x`"), "names the field: {line}");
        assert!(!line.contains("not yours"), "{line}");
    }
    for name in ["hostvar", "anyhost", "tokenvar"] {
        let line = refusal(&log, name);
        assert!(
            line.contains("is one of the host's own variables")
                && line.contains("give the plugin a variable of its own"),
            "{line}"
        );
    }
    for name in ["environ", "dotdot", "symlink"] {
        let line = refusal(&log, name);
        assert!(
            line.contains("is outside the secrets folder") && line.contains("--secrets-dir"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn secrets_dir_is_where_manifest_files_are_read_and_the_admin_token_file_is_refused() {
    let (dir, plugins, data) = folders();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("github"), "from-secrets-dir\n").unwrap();
    std::fs::write(secrets.join("admin.token"), "admin-file-token\n").unwrap();
    std::fs::write(plugins.join("beside.secret"), "beside\n").unwrap();
    let token =
        |reference: &str| format!("[verify]\nscheme = \"token\"\nsecret = \"{reference}\"\n");
    install(
        &plugins,
        &[
            plugin_with("relative", ECHO, &token("file:github")),
            plugin_with(
                "absolute",
                ECHO,
                &token(&format!("file:{}", secrets.join("github").display())),
            ),
            plugin_with("admin", ECHO, &token("file:admin.token")),
            plugin_with("beside", ECHO, &token("file:../plugins/beside.secret")),
        ],
    );
    let admin_token = format!("file:{}", secrets.join("admin.token").display());
    let mut command = Binary::command(
        &plugins,
        &data,
        &["--admin", "127.0.0.1:0", "--admin-token", &admin_token],
    );
    command.env("HOOKHOST_SECRETS_DIR", &secrets);
    let host = Binary::start(command);

    for name in ["relative", "absolute"] {
        assert_eq!(
            status(&host, &format!("/hooks/{name}"), "from-secrets-dir").await,
            StatusCode::OK,
            "{name}:\n{}",
            host.log()
        );
    }
    eventually(PATIENCE, "both refusals are logged", || async {
        let log = host.log();
        (log.contains("plugin=admin ") && log.contains("plugin=beside ")).then_some(())
    })
    .await;
    let log = host.log();
    assert!(
        refusal(&log, "admin").contains("is one of the host's own secrets"),
        "{log}"
    );
    assert!(
        refusal(&log, "beside").contains("is outside the secrets folder"),
        "{log}"
    );
    for name in ["admin", "beside"] {
        assert_eq!(
            status(&host, &format!("/hooks/{name}"), "-").await,
            StatusCode::NOT_FOUND
        );
    }
}
