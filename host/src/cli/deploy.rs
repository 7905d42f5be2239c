//! `hookhost deploy NAME.wasm [--manifest NAME.toml] [--name N]`: deploy a
//! plugin through a running host's admin API (`PUT /plugins/{name}`), and
//! its companions `--versions NAME`, `--rollback NAME [--to V]` and
//! `--undeploy NAME`.
//!
//! Owns the flags and reading the files; the requests and what is printed
//! are [`hookhost::console`]'s. A refused deploy (422) prints the host's
//! reason and exits 1.

use std::path::PathBuf;

use anyhow::Context as _;

use super::{AdminArgs, console};

#[derive(clap::Args)]
pub struct DeployArgs {
    /// The component to deploy. Its manifest is `--manifest`, else the
    /// `NAME.toml` beside it when there is one, else none (served at
    /// `/hooks/NAME`, sync, unverified).
    #[arg(value_name = "NAME.wasm", required_unless_present_any = ["versions", "rollback", "undeploy"],
          conflicts_with_all = ["versions", "rollback", "undeploy"])]
    component: Option<PathBuf>,

    /// The plugin's manifest.
    #[arg(long, value_name = "NAME.toml")]
    manifest: Option<PathBuf>,

    /// Deploy under this name instead of the component's file name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// List the deployed versions of NAME, newest first.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["rollback", "undeploy"])]
    versions: Option<String>,

    /// Make an earlier version of NAME live again: `--to`, else the newest
    /// one older than the live one.
    #[arg(long, value_name = "NAME", conflicts_with = "undeploy")]
    rollback: Option<String>,

    /// With `--rollback`: the version to make live.
    #[arg(long, value_name = "VERSION", requires = "rollback")]
    to: Option<i64>,

    /// Stop serving NAME (its versions are kept; `--rollback NAME --to V`
    /// makes one live again).
    #[arg(long, value_name = "NAME")]
    undeploy: Option<String>,

    #[command(flatten)]
    admin: AdminArgs,
}

pub fn run(args: DeployArgs) -> anyhow::Result<()> {
    if let Some(name) = args.versions.clone() {
        return console(&args.admin, |target, json| async move {
            target.versions(&name, json).await
        });
    }
    if let Some(name) = args.rollback.clone() {
        let to = args.to;
        return console(&args.admin, |target, json| async move {
            target.rollback(&name, to, json).await
        });
    }
    if let Some(name) = args.undeploy.clone() {
        return console(&args.admin, |target, json| async move {
            target.undeploy(&name, json).await
        });
    }
    let component = args
        .component
        .clone()
        .expect("clap requires the component without --versions, --rollback or --undeploy");
    let name = match &args.name {
        Some(name) => name.clone(),
        None => component
            .file_stem()
            .and_then(|stem| stem.to_str())
            .map(str::to_owned)
            .with_context(|| {
                format!(
                    "{}: cannot tell the plugin's name from the file name; give --name",
                    component.display()
                )
            })?,
    };
    let wasm = std::fs::read(&component)
        .with_context(|| format!("cannot read {}", component.display()))?;
    let beside = component.with_extension("toml");
    let manifest_path = match &args.manifest {
        Some(path) => Some(path.clone()),
        None => beside.is_file().then_some(beside),
    };
    let manifest = match &manifest_path {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read manifest {}", path.display()))?,
        ),
        None => None,
    };
    if let Some(path) = &manifest_path
        && args.manifest.is_none()
    {
        eprintln!("using the manifest beside it: {}", path.display());
    }
    console(&args.admin, |target, json| async move {
        target.deploy(&name, &wasm, manifest.as_deref(), json).await
    })
}
