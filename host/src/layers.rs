//! Keeps the layering of `host/src` true: a top-level module uses only
//! modules of lower layers, so no circle can form between them.
//!
//! The test reads every `.rs` file under `src/`, takes each `crate::NAME`
//! it mentions in code (comments and doc links do not count: they may point
//! anywhere), and checks that `NAME`'s layer is below the file's own. A new
//! top-level module must be given a layer here, which is the moment to
//! decide where it belongs.

use std::collections::BTreeSet;
use std::path::Path;

/// Every top-level module of the library, lowest layer first. A module may
/// use the modules of the layers before its own, never its own layer's
/// others or later ones.
const LAYERS: &[(&str, &[&str])] = &[
    ("units", &["units"]),
    ("reading the operator's files", &["files"]),
    ("the last hour in memory", &["series"]),
    (
        "leaves",
        &["secret", "telemetry", "trace", "ingress", "fetch"],
    ),
    ("database connections", &["pg"]),
    ("storage and verification", &["inbox", "verify"]),
    ("sandbox", &["runtime"]),
    ("configuration", &["config"]),
    ("plugin set", &["registry"]),
    ("one delivery", &["delivery"]),
    (
        "orchestration",
        &["server", "queue", "watch", "alert", "deploy"],
    ),
    ("admin API", &["admin"]),
    (
        "command line",
        &["check", "console", "scaffold", "send", "settings"],
    ),
    ("fuzz target bodies", &["fuzz"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The `crate::NAME` references in `text`, outside comments.
fn references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = match line.find("//") {
            Some(comment) => &line[..comment],
            None => line,
        };
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `crate::{a, b}` names several at once.
            if let Some(list) = after.strip_prefix('{') {
                let list = list.split('}').next().unwrap_or_default();
                for item in list.split(',') {
                    let item: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !item.is_empty() {
                        found.insert(item);
                    }
                }
            } else if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn files(src: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(src, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(src).unwrap();
            let top = relative.components().next().unwrap().as_os_str();
            let module = top.to_string_lossy().trim_end_matches(".rs").to_owned();
            out.push((module, path));
        }
    }
}

#[test]
fn top_level_modules_only_use_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &src, &mut all);
    let mut wrong = Vec::new();
    for (module, path) in &all {
        // The crate root and the binary sit above every layer; this file
        // names them all.
        if ["lib", "main", "cli", "layers"].contains(&module.as_str()) {
            continue;
        }
        let Some(own) = layer_of(module) else {
            wrong.push(format!(
                "module `{module}` has no layer: add it to LAYERS in src/layers.rs"
            ));
            continue;
        };
        let text = std::fs::read_to_string(path).unwrap();
        for used in references(&text) {
            if used == *module || used == "self" || used == "super" {
                continue;
            }
            match layer_of(&used) {
                Some(layer) if layer < own => {}
                Some(layer) => wrong.push(format!(
                    "{} uses crate::{used} ({}), but `{module}` is in layer {own} ({}): \
                     a module may use only lower layers",
                    path.strip_prefix(&src).unwrap().display(),
                    LAYERS[layer].0,
                    LAYERS[own].0,
                )),
                // Items of the crate root (`crate::run`) are above every layer.
                None => wrong.push(format!(
                    "{} uses crate::{used}, which is not a layered module",
                    path.strip_prefix(&src).unwrap().display()
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn references_are_found_in_code_only() {
    let text = "use crate::inbox::Inbox;\nuse crate::{config, verify::Scheme};\n\
                // crate::admin in a comment\n/// [`crate::server`]\nlet x = crate::units::MIB;";
    let found: Vec<_> = references(text).into_iter().collect();
    assert_eq!(found, ["config", "inbox", "units", "verify"]);
}
