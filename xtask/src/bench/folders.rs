//! Files on disk: emptying `TARGET/bench/` but for what survives runs, and
//! putting a plugin into a plugin folder the way the README says. Which
//! plugins go where is each stage's business.

use std::path::Path;

use anyhow::Context as _;

/// Removes everything in `work` but `keep` (a direct child).
pub fn clean_except(work: &Path, keep: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(work) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path == keep {
            continue;
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

/// Copies a component (and its manifest) into a plugin folder the way the
/// README says: manifest first, each renamed into place.
pub fn install(dir: &Path, name: &str, wasm: &Path, manifest: Option<&str>) -> anyhow::Result<()> {
    if let Some(manifest) = manifest {
        let staged = dir.join(format!(".{name}.toml.tmp"));
        std::fs::write(&staged, manifest)?;
        std::fs::rename(&staged, dir.join(format!("{name}.toml")))?;
    }
    let staged = dir.join(format!(".{name}.wasm.tmp"));
    std::fs::copy(wasm, &staged).with_context(|| format!("cannot copy {}", wasm.display()))?;
    std::fs::rename(&staged, dir.join(format!("{name}.wasm")))?;
    Ok(())
}
