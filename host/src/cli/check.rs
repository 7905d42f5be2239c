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
    /// The component, `NAME.wasm` (not needed with `--vectors --manifest`).
    #[arg(value_name = "PLUGIN.wasm", required_unless_present = "manifest")]
    wasm: Option<PathBuf>,

    /// Its manifest [default: NAME.toml beside the component, if present].
    #[arg(long, value_name = "NAME.toml")]
    manifest: Option<PathBuf>,

    /// Instead of loading the plugin, run the published signature vectors
    /// of the manifest's `[verify] scheme` through the host's verification
    /// (with the manifest's other `[verify]` keys, each vector's own secret
    /// and time), offline. Exits 1 if any vector is refused.
    #[arg(long)]
    vectors: bool,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    if args.vectors {
        let manifest = match (&args.manifest, &args.wasm) {
            (Some(path), _) => path.clone(),
            (None, Some(wasm)) => wasm.with_extension("toml"),
            (None, None) => anyhow::bail!("--vectors needs --manifest NAME.toml or PLUGIN.wasm"),
        };
        let report = hookhost::check::vectors(&manifest)?;
        print!("{}", report.text);
        if report.failed > 0 {
            anyhow::bail!(
                "{} of {} vectors refused by {}",
                report.failed,
                report.ran,
                manifest.display()
            );
        }
        println!(
            "ok: {} vectors verified with {}",
            report.ran,
            manifest.display()
        );
        return Ok(());
    }
    let Some(wasm) = args.wasm else {
        anyhow::bail!("give the plugin, PLUGIN.wasm (or --vectors --manifest NAME.toml)");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(hookhost::check::check(&wasm, args.manifest.as_deref()))?;
    print!("{}", report.text);
    println!("ok: {} would load", report.name);
    Ok(())
}
