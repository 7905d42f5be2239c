//! The request every stage sends: a GitHub `push` of about 1.5 KB, written
//! once to `TARGET/bench/push.json`, signed with the demo secret by the
//! baseline (the way GitHub signs), and the headers that go with it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// The demo secret the `github` route verifies with (and the baseline).
pub const SECRET: &str = "hookhost-bench-secret";

/// The body on disk (wrk reads it from there) and the two header sets.
pub struct Payload {
    /// `TARGET/bench/push.json`.
    pub file: PathBuf,
    /// A GitHub `push` delivery: JSON, the event, its signature.
    pub github_headers: Vec<(&'static str, String)>,
    /// Plain JSON, for the unverified routes.
    pub json_headers: Vec<(&'static str, String)>,
}

impl Payload {
    /// Writes the body into `work` and signs it with `baseline`.
    pub fn write(work: &Path, baseline: &Path) -> anyhow::Result<Self> {
        let file = work.join("push.json");
        std::fs::write(&file, push_body())?;
        let signature = baseline_sign(baseline, &file)?;
        Ok(Self {
            file,
            github_headers: vec![
                ("Content-Type", "application/json".to_owned()),
                ("X-GitHub-Event", "push".to_owned()),
                ("X-Hub-Signature-256", signature),
            ],
            json_headers: vec![("Content-Type", "application/json".to_owned())],
        })
    }
}

/// `hookhost-baseline sign`: the `X-Hub-Signature-256` value of `body`.
fn baseline_sign(baseline: &Path, body: &Path) -> anyhow::Result<String> {
    let output = Command::new(baseline)
        .args(["sign", "--secret", SECRET, "--file"])
        .arg(body)
        .output()
        .context("cannot run hookhost-baseline sign")?;
    if !output.status.success() {
        bail!("hookhost-baseline sign failed");
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// A GitHub `push` payload of about 1.5 KB (trimmed from a real one).
fn push_body() -> String {
    let commit = |id: &str, message: &str| {
        format!(
            r#"{{"id":"{id}","tree_id":"{id}","distinct":true,"message":"{message}","timestamp":"2026-11-20T10:00:00Z","url":"https://github.com/octo/hello/commit/{id}","author":{{"name":"Octo Cat","email":"octo@example.com","username":"octocat"}},"added":[],"removed":[],"modified":["README.md"]}}"#
        )
    };
    let body = format!(
        r#"{{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","created":false,"deleted":false,"forced":false,"compare":"https://github.com/octo/hello/compare/6113728f27ae...0d1a26e67d8f","commits":[{},{}],"repository":{{"id":186853002,"name":"hello","full_name":"octo/hello","private":false,"owner":{{"login":"octo","id":21031067,"type":"User"}},"html_url":"https://github.com/octo/hello","default_branch":"main"}},"pusher":{{"name":"octocat","email":"octo@example.com"}},"sender":{{"login":"octocat","id":21031067,"type":"User","site_admin":false}}}}"#,
        commit(
            "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "Update README.md with the new build instructions"
        ),
        commit("b2c1e6f0a3d4c5b6a7980f1e2d3c4b5a69788776", "Fix typo"),
    );
    body
}
