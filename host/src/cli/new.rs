//! `hookhost new`: create a plugin project (Rust, Python or JavaScript) and
//! print how to build it.
//!
//! The templates and the writing are [`hookhost::scaffold`]'s; this file
//! owns the flags and the three lines printed after.

use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  hookhost new orders --lang js
  hookhost new billing --lang python --dir plugins-src/billing")]
pub struct NewArgs {
    /// The plugin's name: letters, digits, `-`, `_` (it becomes `NAME.wasm`
    /// and the route `/hooks/NAME`).
    #[arg(value_name = "NAME")]
    name: String,

    /// The language: `rust`, `python` (componentize-py) or `js`
    /// (componentize-js).
    #[arg(long, value_name = "LANG", value_parser = clap::builder::PossibleValuesParser::new(hookhost::scaffold::Language::NAMES))]
    lang: String,

    /// The folder to create (it must not exist) [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: NewArgs) -> anyhow::Result<()> {
    let language: hookhost::scaffold::Language = args.lang.parse().map_err(anyhow::Error::msg)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let project = hookhost::scaffold::create(&args.name, language, &dir)?;
    println!(
        "created {} ({language} plugin `{}`, {} files)",
        project.dir.display(),
        args.name,
        project.files.len()
    );
    println!(
        "build:  cd {} && {}",
        project.dir.display(),
        hookhost::scaffold::BUILD_COMMAND
    );
    println!(
        "then see {}/README.md to serve it and try it with `hookhost send`",
        project.dir.display()
    );
    Ok(())
}
