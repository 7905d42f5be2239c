//! `hookhost new`: writes a ready-to-build plugin project in Rust, Python or
//! JavaScript.
//!
//! Owns the templates and writing them out. Does not build anything: each
//! project carries a `Makefile` whose default target installs its own tools
//! locally (Rust target, a `.venv`, a `node_modules`) and writes `NAME.wasm`.
//!
//! The binary cannot assume it runs inside the hookhost repository, so
//! everything a project needs is compiled in: the WIT contract, the Python and
//! JavaScript helpers (with the TypeScript declarations `jco types` generated
//! from the WIT), and for Rust a vendored copy of the `hookhost-sdk` crate
//! (it is not published; with it the project builds with crates.io alone).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context as _;

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A crate built with cargo for `wasm32-wasip2`.
    Rust,
    /// `app.py` built with componentize-py.
    Python,
    /// `plugin.js` built with componentize-js.
    Js,
}

impl Language {
    /// Every language, as spelled on the command line.
    pub const NAMES: &[&str] = &["rust", "python", "js"];
}

impl FromStr for Language {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "rust" => Ok(Language::Rust),
            "python" | "py" => Ok(Language::Python),
            "js" | "javascript" => Ok(Language::Js),
            other => Err(format!(
                "unknown language `{other}`: use rust, python or js"
            )),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::Js => "JavaScript",
        })
    }
}

/// A project written by [`create`].
#[derive(Debug)]
pub struct Project {
    /// The project folder.
    pub dir: PathBuf,
    /// Files written, relative to `dir`.
    pub files: Vec<PathBuf>,
}

/// The WIT contract every project builds against.
const WIT: &str = include_str!("../../../wit/world.wit");

/// The Rust SDK's sources, vendored into Rust projects as `hookhost-sdk/`.
/// A unit test checks this lists every file of `sdk/src`.
const RUST_SDK: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../../sdk/src/lib.rs")),
    ("src/config.rs", include_str!("../../../sdk/src/config.rs")),
    ("src/http.rs", include_str!("../../../sdk/src/http.rs")),
    ("src/kv.rs", include_str!("../../../sdk/src/kv.rs")),
    (
        "src/delivery.rs",
        include_str!("../../../sdk/src/delivery.rs"),
    ),
    ("src/error.rs", include_str!("../../../sdk/src/error.rs")),
    ("src/log.rs", include_str!("../../../sdk/src/log.rs")),
    (
        "src/response.rs",
        include_str!("../../../sdk/src/response.rs"),
    ),
];

/// The JavaScript helper and the WIT types `jco types` generated for it.
const JS_SDK: &[(&str, &str)] = &[
    ("hookhost.js", include_str!("../../../sdk/js/hookhost.js")),
    (
        "hookhost.d.ts",
        include_str!("../../../sdk/js/hookhost.d.ts"),
    ),
    (
        "types/handler.d.ts",
        include_str!("../../../sdk/js/types/handler.d.ts"),
    ),
    (
        "types/interfaces/hookhost-plugin-config.d.ts",
        include_str!("../../../sdk/js/types/interfaces/hookhost-plugin-config.d.ts"),
    ),
    (
        "types/interfaces/hookhost-plugin-kv.d.ts",
        include_str!("../../../sdk/js/types/interfaces/hookhost-plugin-kv.d.ts"),
    ),
    (
        "types/interfaces/hookhost-plugin-log.d.ts",
        include_str!("../../../sdk/js/types/interfaces/hookhost-plugin-log.d.ts"),
    ),
    (
        "types/interfaces/hookhost-plugin-queue.d.ts",
        include_str!("../../../sdk/js/types/interfaces/hookhost-plugin-queue.d.ts"),
    ),
    (
        "types/interfaces/hookhost-plugin-types.d.ts",
        include_str!("../../../sdk/js/types/interfaces/hookhost-plugin-types.d.ts"),
    ),
];

/// Writes a new `language` plugin called `name` into `dir`, which must not
/// exist yet (its parent folders are created). `name` follows the host's
/// rules for plugin names: it becomes `NAME.wasm` and the route `/hooks/NAME`.
pub fn create(name: &str, language: Language, dir: &Path) -> anyhow::Result<Project> {
    crate::registry::check_name(name).map_err(anyhow::Error::msg)?;
    if language == Language::Rust && !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        anyhow::bail!(
            "a Rust plugin's name must start with a letter (it names the crate): `{name}`"
        );
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // `create_dir` (not `_all`) fails on an existing folder: nothing of the
    // user's is ever overwritten, and two concurrent runs cannot both win.
    std::fs::create_dir(dir).map_err(|err| match err.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
            "{} already exists: choose another NAME or --dir (nothing was written)",
            dir.display()
        ),
        _ => anyhow::Error::new(err).context(format!("cannot create {}", dir.display())),
    })?;

    let files = files(name, language);
    for (path, contents) in &files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, contents)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(Project {
        dir: dir.to_owned(),
        files: files.into_iter().map(|(path, _)| path).collect(),
    })
}

/// The command that builds a project (run in its folder); it writes `NAME.wasm`.
pub const BUILD_COMMAND: &str = "make";

/// Every file of a new project: (path relative to the project, contents).
fn files(name: &str, language: Language) -> Vec<(PathBuf, String)> {
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
    };
    let mut files: Vec<(PathBuf, String)> = vec![
        ("wit/world.wit".into(), WIT.to_owned()),
        (format!("{name}.toml").into(), manifest(name, language)),
        ("README.md".into(), readme(name, language)),
    ];
    match language {
        Language::Rust => {
            files.push(("Cargo.toml".into(), fill(include_str!("rust/Cargo.toml"))));
            files.push(("src/lib.rs".into(), fill(include_str!("rust/lib.rs"))));
            files.push(("Makefile".into(), fill(include_str!("rust/Makefile"))));
            files.push((
                "hookhost-sdk/Cargo.toml".into(),
                include_str!("rust/sdk-Cargo.toml").to_owned(),
            ));
            for (path, contents) in RUST_SDK {
                files.push((Path::new("hookhost-sdk").join(path), (*contents).to_owned()));
            }
            files.push((".gitignore".into(), "/target\n*.wasm\n".into()));
        }
        Language::Python => {
            files.push(("app.py".into(), fill(include_str!("python/app.py"))));
            files.push((
                "hookhost.py".into(),
                include_str!("../../../sdk/python/hookhost.py").to_owned(),
            ));
            files.push(("Makefile".into(), fill(include_str!("python/Makefile"))));
            files.push((".gitignore".into(), "/.venv\n__pycache__/\n*.wasm\n".into()));
        }
        Language::Js => {
            files.push(("plugin.js".into(), fill(include_str!("js/plugin.js"))));
            files.push(("package.json".into(), fill(include_str!("js/package.json"))));
            files.push(("Makefile".into(), fill(include_str!("js/Makefile"))));
            for (path, contents) in JS_SDK {
                files.push((PathBuf::from(path), (*contents).to_owned()));
            }
            files.push((".gitignore".into(), "/node_modules\n*.wasm\n".into()));
        }
    }
    files
}

fn manifest(name: &str, language: Language) -> String {
    // Interpreters start from a snapshot of their heap: give them room.
    let memory = match language {
        Language::Rust => "16MiB",
        Language::Python | Language::Js => "64MiB",
    };
    format!(
        r#"# Manifest for {name}.wasm: copy both files into the host's plugin folder.
route = "/hooks/{name}"

[limits]
timeout = "5s"
memory = "{memory}"

# Have the host check the sender's signature before the plugin runs, e.g.:
# [verify]
# scheme = "github"       # github, stripe, slack, shopify, standard-webhooks, ...
# secret = "env:{env}_WEBHOOK_SECRET"
"#,
        env = name.to_uppercase().replace('-', "_"),
    )
}

fn readme(name: &str, language: Language) -> String {
    let (source, tools, raw) = match language {
        Language::Rust => (
            "`src/lib.rs` (with the SDK vendored in `hookhost-sdk/`)",
            "the `wasm32-wasip2` Rust target (added by `make` when missing)",
            "cargo build --release --target wasm32-wasip2".to_owned(),
        ),
        Language::Python => (
            "`app.py` (helpers in `hookhost.py`)",
            "componentize-py 0.25.1, installed by `make` into `.venv`",
            "componentize-py -d wit -w handler componentize -p . app -o NAME.wasm"
                .replace("NAME", name),
        ),
        Language::Js => (
            "`plugin.js` (helpers in `hookhost.js`, types in `hookhost.d.ts` and `types/`)",
            "componentize-js 0.23.0, installed by `make` into `node_modules` (`npm install`)",
            "npx componentize-js plugin.js --wit wit --world-name handler -o NAME.wasm"
                .replace("NAME", name),
        ),
    };
    format!(
        r#"# {name}

A hookhost webhook handler plugin in {language}: {source}, built against the WIT contract in `wit/world.wit`.

## Build

```sh
make        # writes {name}.wasm
```

`make` needs {tools}. The build itself is `{raw}`.

## Try it

```sh
mkdir -p plugins && cp {name}.wasm {name}.toml plugins/
hookhost serve --plugins plugins &
hookhost send http://127.0.0.1:8080/hooks/{name} --data '{{"name":"you"}}'
# 200 OK … {{"plugin":"{name}","hello":"you","delivery":"…"}}
```

To deploy a new version into a running host, copy it in under a dotfile
name and rename it: `cp {name}.wasm plugins/.{name}.wasm.tmp && mv
plugins/.{name}.wasm.tmp plugins/{name}.wasm`. `{name}.toml` sets the route,
limits and (commented out) signature verification.
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_sdk_lists_every_sdk_source_file() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(&sdk)
            .unwrap()
            .map(|entry| format!("src/{}", entry.unwrap().file_name().to_string_lossy()))
            .collect();
        on_disk.sort();
        let mut vendored: Vec<String> = RUST_SDK.iter().map(|(p, _)| p.to_string()).collect();
        vendored.sort();
        assert_eq!(vendored, on_disk, "update RUST_SDK in scaffold/mod.rs");
    }

    #[test]
    fn js_types_list_every_generated_declaration() {
        let types = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/js/types/interfaces");
        for entry in std::fs::read_dir(types).unwrap() {
            let file = format!(
                "types/interfaces/{}",
                entry.unwrap().file_name().to_string_lossy()
            );
            assert!(
                JS_SDK.iter().any(|(path, _)| *path == file),
                "{file} is not in JS_SDK in scaffold/mod.rs"
            );
        }
    }

    #[test]
    fn refuses_bad_names_and_existing_folders() {
        let dir = tempfile::tempdir().unwrap();
        let err = create("no/slash", Language::Python, &dir.path().join("x")).unwrap_err();
        assert!(err.to_string().contains("is not allowed"), "{err}");
        let err = create("9lives", Language::Rust, &dir.path().join("y")).unwrap_err();
        assert!(err.to_string().contains("start with a letter"), "{err}");
        assert!(!dir.path().join("x").exists() && !dir.path().join("y").exists());

        let existing = dir.path().join("taken");
        std::fs::create_dir(&existing).unwrap();
        std::fs::write(existing.join("keep.txt"), "mine").unwrap();
        let err = create("taken", Language::Js, &existing).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(
            std::fs::read_to_string(existing.join("keep.txt")).unwrap(),
            "mine"
        );
        assert_eq!(std::fs::read_dir(&existing).unwrap().count(), 1);
    }

    #[test]
    fn every_language_gets_wit_manifest_readme_and_makefile() {
        let dir = tempfile::tempdir().unwrap();
        for (language, source) in [
            (Language::Rust, "src/lib.rs"),
            (Language::Python, "app.py"),
            (Language::Js, "plugin.js"),
        ] {
            let target = dir.path().join(format!("p-{language}"));
            let project = create("my-hook", language, &target).unwrap();
            for file in [
                "wit/world.wit",
                "my-hook.toml",
                "README.md",
                "Makefile",
                source,
            ] {
                assert!(target.join(file).is_file(), "{language}: {file} missing");
                assert!(project.files.contains(&PathBuf::from(file)));
            }
            let readme = std::fs::read_to_string(target.join("README.md")).unwrap();
            assert!(
                readme.contains("hookhost send http://127.0.0.1:8080/hooks/my-hook"),
                "{readme}"
            );
            let manifest = std::fs::read_to_string(target.join("my-hook.toml")).unwrap();
            crate::config::Manifest::parse(
                "my-hook",
                &manifest,
                &crate::secret::SecretResolver::new(&target),
            )
            .unwrap_or_else(|err| panic!("{language}: the manifest does not load: {err}"));
            let makefile = std::fs::read_to_string(target.join("Makefile")).unwrap();
            assert!(!makefile.contains("{{"), "{language}: unfilled template");
        }
        let cargo = std::fs::read_to_string(dir.path().join("p-Rust/Makefile")).unwrap();
        assert!(cargo.contains("release/my_hook.wasm"), "{cargo}");
    }
}
