//! `hookhost keygen --scheme discord|standard-webhooks|sendgrid`: a test key
//! pair for a key-pair scheme, so a route can be tried end to end with
//! `hookhost send --key` before the real sender is set up.
//!
//! Owns writing the private key (PKCS#8 PEM, the format `send --key` reads,
//! created with mode 0600 and never over an existing file) and printing the
//! manifest lines with the public key, spelled as the provider shows it.
//! The keys themselves are the verify module's [`PrivateKey`].

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use hookhost::verify::PrivateKey;

/// The schemes that verify with a public key the operator configures.
const SCHEMES: &[&str] = &["discord", "standard-webhooks", "sendgrid"];

#[derive(clap::Args)]
#[command(after_help = "Example:
  hookhost keygen --scheme discord --out discord.pem >> plugins/bot.toml
  hookhost send http://127.0.0.1:8080/hooks/bot --scheme discord --key file:discord.pem --data '{\"type\":2}'")]
pub struct KeygenArgs {
    /// The route's `[verify] scheme`.
    #[arg(long, value_name = "SCHEME", value_parser = clap::builder::PossibleValuesParser::new(SCHEMES))]
    scheme: String,

    /// Where to write the private key (PKCS#8 PEM) [default: SCHEME.pem].
    /// An existing file is never overwritten.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let key = generate(&args.scheme)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}.pem", args.scheme)));
    write_private(&out, key.to_pem().as_bytes())?;
    println!(
        "# test key pair for `{}`: the private key is in {} (for `hookhost send --key file:{}`)",
        args.scheme,
        out.display(),
        out.display()
    );
    println!("[verify]");
    println!("scheme = \"{}\"", args.scheme);
    println!(
        "public_key = \"{}\"",
        hookhost::send::public_key(&args.scheme, &key)?
    );
    Ok(())
}

/// A fresh private key of the type `scheme` signs with, from the operating
/// system's random source (through rustls' `ring` provider, which the host
/// already links).
fn generate(scheme: &str) -> anyhow::Result<PrivateKey> {
    let random = rustls::crypto::ring::default_provider().secure_random;
    // A test key: the seed is not wiped (the PEM is written to disk anyway).
    let mut seed = [0u8; 32];
    match scheme {
        "discord" | "standard-webhooks" => {
            random
                .fill(&mut seed)
                .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
            Ok(PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                &seed,
            )))
        }
        "sendgrid" => loop {
            random
                .fill(&mut seed)
                .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
            // A scalar of 0 or past the group order is not a key (about
            // one draw in 2^32): draw again.
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&seed) {
                return Ok(PrivateKey::P256(key));
            }
        },
        other => anyhow::bail!("`{other}` has no key pair (one of: {})", SCHEMES.join(", ")),
    }
}

/// Creates `path` with `contents`, readable by the owner only; refuses to
/// replace a file that exists (it may be a key in use).
fn write_private(path: &std::path::Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot create {} (an existing file is never overwritten; pass another --out)",
            path.display()
        )
    })?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))
}
