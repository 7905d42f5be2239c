//! The native baseline, (a) and (b): sync routes under `--connections`
//! connections, on the first hookhost, their runs interleaved by
//! [`super::wrk::measure`]. Owns their plugins and their rows' wording.

use std::path::Path;

use super::binaries::Binaries;
use super::folders::install;
use super::payload::{Payload, SECRET};
use super::server::Server;
use super::wrk::{self, Target};
use super::{Plan, REUSE};

/// `echo`, `github` and `github-reused` (opt-in instance reuse), with the
/// secret file the `github` routes verify with.
pub fn install_plugins(plugins: &Path, bins: &Binaries) -> anyhow::Result<()> {
    install(plugins, "echo", &bins.echo, None)?;
    install(
        plugins,
        "github",
        &bins.github,
        Some(
            "route = \"/hooks/github\"\n[verify]\nscheme = \"github\"\nsecret = \"file:github.secret\"\n",
        ),
    )?;
    // The same plugin with opt-in instance reuse, for the `reused` rows.
    install(
        plugins,
        "github-reused",
        &bins.github,
        Some(&format!(
            "route = \"/hooks/github-reused\"\n[verify]\nscheme = \"github\"\nsecret = \"file:github.secret\"\n{REUSE}"
        )),
    )?;
    std::fs::write(plugins.join("github.secret"), SECRET)?;
    Ok(())
}

/// The baseline first (the ratios are against it), then (a) and (b) as
/// `--scenarios` asks.
pub fn targets(
    plan: &Plan,
    work: &Path,
    host: &Server,
    baseline: &Server,
    payload: &Payload,
) -> anyhow::Result<Vec<Target>> {
    let (body, github, json) = (
        &payload.file,
        &payload.github_headers,
        &payload.json_headers,
    );
    let mut targets: Vec<Target> = vec![Target::new(
        "native baseline",
        "hyper, HMAC-SHA256 check + JSON parse, no Wasm",
        baseline.url("/"),
        wrk::script(work, "baseline", body, github)?,
    )];
    if plan.has('a') {
        targets.push(Target::new(
            "(a) echo",
            "sync, unverified, 1.5 KB JSON echoed by a fresh Rust instance",
            host.url("/hooks/echo"),
            wrk::script(work, "echo", body, json)?,
        ));
    }
    if plan.has('b') {
        targets.push(Target::new(
            "(b) github",
            "sync, X-Hub-Signature-256 verified natively, push parsed by a fresh Rust instance",
            host.url("/hooks/github"),
            wrk::script(work, "github", body, github)?,
        ));
        targets.push(Target::new(
            "(b) github, reused",
            "(b) with opt-in instance reuse (`[instance] max_deliveries = 10000`): not the default",
            host.url("/hooks/github-reused"),
            wrk::script(work, "github", body, github)?,
        ));
    }
    Ok(targets)
}

/// (b) on the host that exports traces (`--otlp`).
pub fn traced_target(work: &Path, traced: &Server, payload: &Payload) -> anyhow::Result<Target> {
    Ok(Target::new(
        "(b) github, traced",
        "(b) on a host exporting every span over OTLP (HTTP/protobuf) to a local sink",
        traced.url("/hooks/github"),
        wrk::script(work, "github", &payload.file, &payload.github_headers)?,
    ))
}
