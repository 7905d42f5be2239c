//! `hookhost send`: POST a webhook signed the way a real sender would, and
//! print the answer (status line, headers, blank line, body).
//!
//! Signing and sending are [`hookhost::send`]'s; this file owns the flags,
//! reading the body and printing. Exits 1 when the answer is not 2xx, after
//! printing it.

use std::path::PathBuf;

use anyhow::Context as _;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  hookhost send http://127.0.0.1:8080/hooks/github --scheme github --secret env:GITHUB_SECRET \\
      --file push.json -H 'X-GitHub-Event: push'
  hookhost send http://127.0.0.1:8080/hooks/stripe --scheme stripe --secret whsec_... --file event.json
  hookhost send http://127.0.0.1:8080/hooks/bot --scheme discord --key file:discord.pem --data '{\"type\":2}'
  hookhost send http://127.0.0.1:8080/hooks/bot --scheme discord --key file:discord.pem --handshake discord-ping
  hookhost send http://127.0.0.1:8080/hooks/echo --data '{\"hello\":1}'")]
pub struct SendArgs {
    /// Where to POST, e.g. `http://127.0.0.1:8080/hooks/github`.
    #[arg(value_name = "URL")]
    url: http::Uri,

    /// Signature scheme to sign with (the route's `[verify] scheme`); omit to
    /// send unsigned.
    #[arg(long, value_name = "SCHEME", value_parser = clap::builder::PossibleValuesParser::new(hookhost::verify::scheme_names()))]
    scheme: Option<String>,

    /// Secret to sign with: `env:VAR`, `file:PATH` or the secret itself.
    #[arg(long, value_name = "SECRET", requires = "scheme")]
    secret: Option<String>,

    /// Private key of a key-pair scheme (`discord`, `standard-webhooks`
    /// `v1a`, `sendgrid`): `file:PATH` to a PKCS#8 PEM, as `hookhost keygen`
    /// writes it. The route's manifest has the matching `public_key`.
    #[arg(long, value_name = "file:PATH", requires = "scheme")]
    key: Option<String>,

    /// Send this handshake of the scheme instead of a delivery (e.g.
    /// `discord-ping`, `slack-url-verification`, `meta-subscribe`), built and
    /// signed as the provider sends it; the body flags are ignored.
    #[arg(long, value_name = "KIND", requires = "scheme")]
    handshake: Option<String>,

    /// Body file (`-` for stdin).
    #[arg(long, value_name = "PATH", conflicts_with = "data")]
    file: Option<PathBuf>,

    /// Body given inline.
    #[arg(long, value_name = "TEXT")]
    data: Option<String>,

    /// Extra request header, repeatable: `-H 'X-GitHub-Event: push'`.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = hookhost::send::parse_header)]
    headers: Vec<(http::HeaderName, http::HeaderValue)>,

    /// `token`/`hmac`: header carrying the token or signature.
    #[arg(long, value_name = "NAME", requires = "scheme")]
    signature_header: Option<String>,

    /// `token`/`hmac`: text before the token or signature (e.g. `sha256=`).
    #[arg(long, value_name = "TEXT", requires = "scheme")]
    prefix: Option<String>,

    /// `hmac`: `sha1`, `sha256` or `sha512`.
    #[arg(long, value_name = "ALG", requires = "scheme")]
    algorithm: Option<String>,

    /// `hmac`: `hex` or `base64`.
    #[arg(long, value_name = "ENC", requires = "scheme")]
    encoding: Option<String>,

    /// `twilio`: the public URL the route's manifest `url` names (Twilio signs
    /// that URL, not the one the request is sent to, e.g. through a tunnel or
    /// proxy).
    #[arg(long, value_name = "URL", requires = "scheme")]
    public_url: Option<String>,

    /// Sign as of this Unix time instead of now (to test stale timestamps).
    #[arg(long, value_name = "SECONDS", requires = "scheme")]
    timestamp: Option<i64>,
}

/// Reads `--key file:PATH`: a key is a file, never inline on a command line
/// (where `ps` and shell history would show it).
fn read_key(reference: &str) -> anyhow::Result<hookhost::verify::PrivateKey> {
    let path = reference
        .strip_prefix("file:")
        .ok_or_else(|| anyhow::anyhow!("--key `{reference}`: give the key file as `file:PATH`"))?;
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("--key: cannot read {path}"))?;
    hookhost::verify::PrivateKey::from_pem(&pem)
        .map_err(|err| anyhow::anyhow!("--key {path}: {err}"))
}

pub fn run(args: SendArgs) -> anyhow::Result<()> {
    let body = match (&args.file, &args.data) {
        (Some(path), _) if path.as_os_str() == "-" => {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)
                .context("cannot read the body from stdin")?;
            body
        }
        (Some(path), _) => std::fs::read(path)
            .with_context(|| format!("cannot read body file {}", path.display()))?,
        (None, Some(data)) => data.clone().into_bytes(),
        (None, None) => Vec::new(),
    };
    let key = args.key.as_deref().map(read_key).transpose()?;
    let verify = match args.scheme {
        Some(scheme) => {
            let secret = match (args.secret, &key) {
                (Some(secret), _) => Some(hookhost::secret::SecretRef::new(secret)),
                (None, Some(_)) => None,
                (None, None) => anyhow::bail!(
                    "--scheme {scheme} needs --secret (env:VAR, file:PATH or the secret), or --key file:PATH for a key-pair scheme"
                ),
            };
            let public_key = key
                .as_ref()
                .map(|key| hookhost::send::public_key(&scheme, key))
                .transpose()
                .map_err(|err| anyhow::anyhow!("--key: {err}"))?;
            // A key-pair scheme is configured as its manifest would be, with
            // the public key of `--key` (the lines `hookhost keygen` prints).
            let mut raw = hookhost::verify::RawVerify {
                scheme,
                public_key,
                ..Default::default()
            };
            raw.secret = secret;
            raw.header = args.signature_header;
            raw.prefix = args.prefix;
            raw.algorithm = args.algorithm;
            raw.encoding = args.encoding;
            raw.url = args.public_url;
            Some(raw)
        }
        None => None,
    };
    let request = hookhost::send::SendRequest {
        url: args.url,
        body,
        headers: args.headers,
        verify,
        timestamp: args.timestamp,
        key,
        handshake: args.handshake,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let answer = runtime.block_on(hookhost::send::send(request))?;
    println!("{}", answer.status);
    for (name, value) in &answer.headers {
        println!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    println!();
    use std::io::Write as _;
    let mut stdout = std::io::stdout();
    stdout.write_all(&answer.body)?;
    if !answer.body.ends_with(b"\n") {
        println!();
    }
    if answer.status.is_success() {
        Ok(())
    } else {
        // The answer is printed; a non-2xx one is a failed send, not an
        // error to log.
        std::process::exit(1)
    }
}
