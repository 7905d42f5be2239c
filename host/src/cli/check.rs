//! `hookhost check`: validate a plugin offline, as the host would load it,
//! and print the report.
//!
//! The checks are [`hookhost::check`]'s; this file owns the flags and the
//! closing `ok:` line. A plugin that would not load is an error, so `main`
//! exits 1 with the reason.

use std::path::PathBuf;

use anyhow::Context as _;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The component, `NAME.wasm`.
    #[arg(value_name = "PLUGIN.wasm")]
    wasm: PathBuf,

    /// Its manifest [default: NAME.toml beside the component, if present].
    #[arg(long, value_name = "NAME.toml")]
    manifest: Option<PathBuf>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(hookhost::check::check(&args.wasm, args.manifest.as_deref()))?;
    print!("{}", report.text);
    println!("ok: {} would load", report.name);
    Ok(())
}
