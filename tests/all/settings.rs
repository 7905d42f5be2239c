//! `hookhost serve` settings from `hookhost.toml`, flags and `HOOKHOST_*`
//! variables, through the real binary; and `hookhost check`.

use std::path::Path;
use std::process::Command;

use hookhost_test_artifacts::{ECHO, GITHUB, GUEST_FETCH};

use crate::support::{Binary, blocking, folders, hookhost_command, install, plugin, shared_cache};

/// A config file serving `plugins` on a free port, with `extra` lines.
fn write_config(dir: &Path, plugins: &Path, data: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("hookhost.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\nplugins = {:?}\ndata = {:?}\ncache_dir = {:?}\nmax_concurrency = 16\n{extra}",
        plugins.display().to_string(),
        data.display().to_string(),
        shared_cache().display().to_string(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `hookhost serve --config CONFIG`, not run yet.
fn serve(config: &Path) -> Command {
    let mut command = hookhost_command(["serve", "--config"]);
    command.arg(config);
    command
}

/// The largest body the host at `host` accepts on echo, probed around `limit`.
fn accepts(host: &Binary, size: usize) -> u16 {
    blocking::post(&host.url("/hooks/echo"), vec![b'x'; size], &[]).0
}

#[test]
fn env_beats_flags_and_flags_beat_the_file() {
    let (dir, plugins, data) = folders();
    install(&plugins, &[plugin("echo", ECHO)]);
    let config = write_config(dir.path(), &plugins, &data, "max_body = \"10\"\n");

    let host = Binary::start(serve(&config));
    assert_eq!(accepts(&host, 10), 200);
    assert_eq!(accepts(&host, 11), 413, "the file's max_body applies");
    assert!(host.log().contains("read settings"), "{}", host.log());
    drop(host);

    let mut command = serve(&config);
    command.args(["--max-body", "20"]);
    let host = Binary::start(command);
    assert_eq!(accepts(&host, 20), 200);
    assert_eq!(accepts(&host, 21), 413, "the flag beats the file");
    drop(host);

    let mut command = serve(&config);
    command
        .args(["--max-body", "20"])
        .env("HOOKHOST_MAX_BODY", "30");
    let host = Binary::start(command);
    assert_eq!(accepts(&host, 30), 200);
    assert_eq!(accepts(&host, 31), 413, "the variable beats the flag");
    drop(host);

    // The file can also come from HOOKHOST_CONFIG.
    let mut command = hookhost_command(["serve"]);
    command.env("HOOKHOST_CONFIG", &config);
    let host = Binary::start(command);
    assert_eq!(accepts(&host, 11), 413);
}

#[test]
fn a_bad_config_file_names_the_file_the_key_and_the_fix() {
    let (dir, plugins, data) = folders();
    let config = write_config(dir.path(), &plugins, &data, "max_body = \"huge\"\n");
    let output = serve(&config).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}: key `max_body`", config.display())),
        "{stderr}"
    );
    assert!(stderr.contains("write e.g. \"64MiB\""), "{stderr}");

    let config = write_config(dir.path(), &plugins, &data, "listen_addr = \"x\"\n");
    let output = serve(&config).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("key `listen_addr`: unknown key"),
        "{stderr}"
    );

    let output = serve(&config)
        .env("HOOKHOST_RETENTION", "forever")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));

    let output = hookhost_command(["serve", "--plugins"])
        .arg(&plugins)
        .env("HOOKHOST_RETENTION", "forever")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HOOKHOST_RETENTION: "), "{stderr}");
}

#[test]
fn print_config_shows_each_value_and_where_it_came_from() {
    let (dir, plugins, data) = folders();
    let config = write_config(dir.path(), &plugins, &data, "retention = \"2h\"\n");
    let output = hookhost_command([
        "serve",
        "--print-config",
        "--header-timeout",
        "3s",
        "--config",
    ])
    .arg(&config)
    .env("HOOKHOST_LOG_FORMAT", "json")
    .output()
    .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(&format!("retention = \"2h\"  # {}", config.display())),
        "{text}"
    );
    assert!(
        text.contains("header_timeout = \"3s\"  # command line"),
        "{text}"
    );
    assert!(
        text.contains("log_format = \"json\"  # environment HOOKHOST_LOG_FORMAT"),
        "{text}"
    );
    assert!(text.contains("body_timeout = \"30s\"  # default"), "{text}");
}

fn check(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let output = hookhost_command(["check"]).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_a_good_plugin_and_says_what_it_is() {
    let (_dir, plugins, _data) = folders();
    install(&plugins, &[plugin("echo", ECHO)]);
    let (code, out, err) = check(&[plugins.join("echo.wasm").as_os_str()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("implements hookhost:plugin handler"), "{out}");
    assert!(
        out.contains("route: /hooks/echo (sync), unverified"),
        "{out}"
    );
    assert!(out.contains("warning: no manifest"), "{out}");
    assert!(!out.contains("instance: reused"), "fresh by default: {out}");
    assert!(
        out.contains("  hookhost:plugin/types@"),
        "imports are listed: {out}"
    );
    assert!(out.contains("ok: echo would load"), "{out}");

    // A manifest given explicitly, with its secret beside it.
    let manifest_dir = tempfile::tempdir().unwrap();
    let manifest = manifest_dir.path().join("github.toml");
    std::fs::write(
        &manifest,
        "route = \"/gh\"\n[verify]\nscheme = \"github\"\nsecret = \"file:gh.secret\"\n\
         [instance]\nmax_deliveries = 20\n",
    )
    .unwrap();
    std::fs::write(manifest_dir.path().join("gh.secret"), "s3cret").unwrap();
    std::fs::copy(GITHUB, plugins.join("github.wasm")).unwrap();
    let (code, out, err) = check(&[
        plugins.join("github.wasm").as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("route: /gh (sync), verified by github"),
        "{out}"
    );
    assert!(
        out.contains("instance: reused for up to 20 deliveries"),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "secrets are never printed: {out}");

    // Imports whose reach depends on the manifest say what it grants.
    std::fs::copy(GUEST_FETCH, plugins.join("fetch.wasm")).unwrap();
    let (code, out, err) = check(&[plugins.join("fetch.wasm").as_os_str()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("(outbound HTTP: nothing granted; add hosts to `[allow] http`)"),
        "{out}"
    );
    std::fs::write(
        plugins.join("fetch.toml"),
        "[allow]\nhttp = [\"127.0.0.1:9000\", \"*.slack.com\"]\n",
    )
    .unwrap();
    let (code, out, err) = check(&[plugins.join("fetch.wasm").as_os_str()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("(outbound HTTP to: 127.0.0.1:9000, *.slack.com)"),
        "{out}"
    );
}

#[test]
fn check_refuses_with_a_precise_reason() {
    let (_dir, plugins, _data) = folders();

    let not_wasm = plugins.join("notes.wasm");
    std::fs::write(&not_wasm, "hello").unwrap();
    let (code, _, err) = check(&[not_wasm.as_os_str()]);
    assert_eq!(code, 1);
    assert!(err.contains("not a WebAssembly file"), "{err}");

    let core = plugins.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let (code, _, err) = check(&[core.as_os_str()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("core WebAssembly module, not a component"),
        "{err}"
    );

    // A valid component that exports nothing.
    let empty = plugins.join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x0d\0\x01\0").unwrap();
    let (code, _, err) = check(&[empty.as_os_str()]);
    assert_eq!(code, 1);
    assert!(err.contains("it must export `handle`"), "{err}");

    install(&plugins, &[plugin("echo", ECHO)]);
    let manifest = plugins.join("echo.toml");
    std::fs::write(&manifest, "route = \"/x\"\n[limits]\ntimeout = \"soon\"\n").unwrap();
    let (code, _, err) = check(&[plugins.join("echo.wasm").as_os_str()]);
    assert_eq!(code, 1, "the manifest beside the component is read");
    assert!(err.contains(&manifest.display().to_string()), "{err}");
    assert!(err.contains("`limits.timeout`"), "{err}");

    std::fs::write(
        &manifest,
        "[verify]\nscheme = \"github\"\nsecret = \"file:missing.secret\"\n",
    )
    .unwrap();
    let (code, _, err) = check(&[plugins.join("echo.wasm").as_os_str()]);
    assert_eq!(code, 1);
    assert!(err.contains("missing.secret"), "{err}");

    let (code, _, err) = check(&[plugins.join("echo.toml").as_os_str()]);
    assert_eq!(code, 1);
    assert!(err.contains("NAME.wasm"), "{err}");
}
