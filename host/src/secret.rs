//! Secret references: how an operator points at a secret without writing it
//! down (`env:VAR`, `file:PATH`, or, discouraged, the secret itself), and
//! the bytes they name.
//!
//! Owns [`SecretRef`] (a reference as written), [`SecretResolver`] (reads
//! it, with `file:` paths relative to a base folder and an injectable
//! environment for tests), [`SecretRules`] (what a plugin manifest may
//! reference: `file:` only inside the secrets folder, none of the host's
//! own variables or files) and [`Secret`] (bytes that never show up in
//! `Debug`). Used by webhook verification, plugin manifests (`[config]`) and
//! the admin token alike, so every secret is read by the same rules; the
//! host's own settings (the admin token) are read without [`SecretRules`].
//! Files are read through [`crate::files`] (regular files only, capped,
//! never blocking). Does not own which references a caller accepts (the
//! admin token refuses literals; a manifest warns about them) or what a
//! missing secret means.

use std::env::VarError;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// A secret as written in a manifest: `env:VAR`, `file:PATH`, or the secret
/// itself. `Debug` shows references but never a literal secret.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(String);

enum Source<'a> {
    Env(&'a str),
    File(&'a str),
    Literal(&'a str),
}

impl SecretRef {
    pub fn new(text: impl Into<String>) -> Self {
        SecretRef(text.into())
    }

    /// True when the manifest holds the secret itself; worth a warning.
    pub fn is_literal(&self) -> bool {
        matches!(self.source(), Source::Literal(_))
    }

    fn source(&self) -> Source<'_> {
        if let Some(var) = self.0.strip_prefix("env:") {
            Source::Env(var)
        } else if let Some(path) = self.0.strip_prefix("file:") {
            Source::File(path)
        } else {
            Source::Literal(&self.0)
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source() {
            Source::Env(_) | Source::File(_) => write!(f, "SecretRef({:?})", self.0),
            Source::Literal(_) => f.write_str("SecretRef(<literal, redacted>)"),
        }
    }
}

/// The prefix of the host's own environment variables (`HOOKHOST_LISTEN`,
/// `HOOKHOST_ADMIN_TOKEN`, ...), which no manifest may read.
pub const HOST_ENV_PREFIX: &str = "HOOKHOST_";

/// What a plugin manifest's references may read. A manifest is written by
/// whoever deploys a plugin, who is not necessarily trusted with the host's
/// own secrets: `file:` stays inside one folder (canonicalised, so neither
/// `..` nor a symlink leads out of it), and the host's own variables and
/// secret files are refused.
#[derive(Debug, Clone)]
pub struct SecretRules {
    /// The canonical secrets folder (`--secrets-dir`, default the plugin
    /// folder): relative `file:` paths start here, and every `file:` must
    /// end up inside it.
    root: PathBuf,
    /// Variables refused besides `HOOKHOST_*` (the admin token's).
    denied_vars: Vec<String>,
    /// Files refused even inside the root (the admin token's, the TLS
    /// key), canonical where they exist.
    denied_files: Vec<PathBuf>,
}

impl SecretRules {
    /// Rules for manifests whose `file:` references must stay inside `root`.
    /// Fails if `root` cannot be opened (it must exist: it is canonicalised).
    pub fn new(root: &Path) -> Result<Self, String> {
        let root = root
            .canonicalize()
            .map_err(|err| format!("secrets folder {}: {err}", root.display()))?;
        Ok(Self {
            root,
            denied_vars: Vec::new(),
            denied_files: Vec::new(),
        })
    }

    /// Also refuses what `reference` (one of the host's own settings, e.g.
    /// the admin token's `env:VAR` or `file:PATH`) names; a relative path
    /// starts from the working directory, as the host reads it.
    pub fn deny_host_secret(mut self, reference: &str) -> Self {
        match SecretRef::new(reference).source() {
            Source::Env(var) if !var.is_empty() => self.denied_vars.push(var.to_owned()),
            Source::File(path) if !path.is_empty() => self = self.deny_file(Path::new(path)),
            _ => {}
        }
        self
    }

    /// Also refuses the file at `path` (e.g. the TLS private key).
    pub fn deny_file(mut self, path: &Path) -> Self {
        self.denied_files
            .push(path.canonicalize().unwrap_or_else(|_| path.to_owned()));
        self
    }

    /// The canonical secrets folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn check_var(&self, var: &str) -> Result<(), String> {
        if var.starts_with(HOST_ENV_PREFIX) || self.denied_vars.iter().any(|d| d == var) {
            return Err(format!(
                "`env:{var}` is one of the host's own variables (`{HOST_ENV_PREFIX}*` and the admin token's), \
                 which a plugin manifest may not read; give the plugin a variable of its own \
                 (e.g. `env:GITHUB_WEBHOOK_SECRET`) or a file in the secrets folder ({})",
                self.root.display()
            ));
        }
        Ok(())
    }

    /// The same rules for the file that was really opened for `path`.
    fn check_opened(&self, path: &Path, opened: &Path) -> Result<(), String> {
        if !opened.starts_with(&self.root) || self.denied_files.iter().any(|d| d == opened) {
            return Err(format!(
                "`file:{}` changed while it was read (it now leads to {}); a plugin manifest may only read \
                 files in the secrets folder {}",
                path.display(),
                opened.display(),
                self.root.display()
            ));
        }
        Ok(())
    }

    /// The canonical file `path` names, if the rules allow it.
    fn check_file(&self, path: &str) -> Result<PathBuf, String> {
        let joined = self.root.join(path);
        let canonical = joined.canonicalize().map_err(|err| {
            format!(
                "cannot read secret file {}: {err} (relative paths start from the secrets folder {}, set by --secrets-dir)",
                joined.display(),
                self.root.display()
            )
        })?;
        if !canonical.starts_with(&self.root) {
            return Err(format!(
                "`file:{path}` is outside the secrets folder {} (it resolves to {}); a plugin manifest may only \
                 read files in that folder: move the file there, or point --secrets-dir at the folder that holds it",
                self.root.display(),
                canonical.display()
            ));
        }
        if self.denied_files.contains(&canonical) {
            return Err(format!(
                "`file:{path}` is one of the host's own secrets (the admin token or the TLS key), which a plugin \
                 manifest may not read; give the plugin a file of its own"
            ));
        }
        Ok(canonical)
    }
}

/// Reads `env:` and `file:` secret references. Environment lookup is
/// injectable so tests need not touch the process environment.
pub struct SecretResolver<'a> {
    manifest_dir: &'a Path,
    env: &'a dyn Fn(&str) -> Result<String, VarError>,
    /// `None` for the host's own settings (full access).
    rules: Option<&'a SecretRules>,
}

fn process_env(name: &str) -> Result<String, VarError> {
    std::env::var(name)
}

impl<'a> SecretResolver<'a> {
    /// Reads the process environment; `file:` paths are relative to
    /// `manifest_dir`, the folder holding the manifest.
    pub fn new(manifest_dir: &'a Path) -> Self {
        SecretResolver {
            manifest_dir,
            env: &process_env,
            rules: None,
        }
    }

    pub fn with_env(
        manifest_dir: &'a Path,
        env: &'a dyn Fn(&str) -> Result<String, VarError>,
    ) -> Self {
        SecretResolver {
            manifest_dir,
            env,
            rules: None,
        }
    }

    /// Reads a plugin manifest's references under `rules`: relative `file:`
    /// paths start from the secrets folder, and what the rules refuse is an
    /// error naming the reference and the fix.
    pub fn for_manifest(rules: &'a SecretRules) -> Self {
        SecretResolver {
            manifest_dir: rules.root(),
            env: &process_env,
            rules: Some(rules),
        }
    }

    /// This resolver, checking `rules` too.
    pub fn with_rules(mut self, rules: &'a SecretRules) -> Self {
        self.rules = Some(rules);
        self
    }

    /// The bytes `reference` names (a literal is itself), or what is wrong
    /// with it, without the field name (the caller adds it).
    pub fn read(&self, reference: &SecretRef) -> Result<Vec<u8>, String> {
        match reference.source() {
            Source::Env("") => {
                Err("`env:` needs a variable name, e.g. `env:WEBHOOK_SECRET`".into())
            }
            Source::Env(var) => {
                if let Some(rules) = self.rules {
                    rules.check_var(var)?;
                }
                self.read_env(var)
            }
            Source::File("") => Err("`file:` needs a path, e.g. `file:secrets/github`".into()),
            Source::File(path) => {
                let path = match self.rules {
                    Some(rules) => rules.check_file(path)?,
                    None => self.manifest_dir.join(path),
                };
                let (mut bytes, opened) = crate::files::read_where(
                    &path,
                    crate::files::MAX_SECRET,
                    crate::files::READ_TIMEOUT,
                )
                .map_err(|err| {
                    let start = match self.rules {
                        Some(rules) => format!(
                            "the secrets folder {} (--secrets-dir)",
                            rules.root().display()
                        ),
                        None => "the manifest's folder".to_owned(),
                    };
                    format!(
                        "cannot read secret file {}: {err} (relative paths start from {start})",
                        path.display()
                    )
                })?;
                // Checked again on what was opened: a symlink or folder
                // swapped in since the check cannot lead out.
                if let (Some(rules), Some(opened)) = (self.rules, opened) {
                    rules.check_opened(&path, &opened)?;
                }
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                if bytes.is_empty() {
                    return Err(format!("secret file {} is empty", path.display()));
                }
                Ok(bytes)
            }
            Source::Literal("") => Err("is empty".into()),
            Source::Literal(text) => Ok(text.as_bytes().to_vec()),
        }
    }

    fn read_env(&self, var: &str) -> Result<Vec<u8>, String> {
        match (self.env)(var) {
            Ok(value) if value.is_empty() => Err(format!("environment variable {var} is empty")),
            Ok(value) => Ok(value.into_bytes()),
            Err(VarError::NotPresent) => Err(format!(
                "environment variable {var} is not set (set it, or use `file:PATH`)"
            )),
            Err(VarError::NotUnicode(_)) => Err(format!(
                "environment variable {var} is not valid UTF-8 (use `file:PATH` for binary secrets)"
            )),
        }
    }
}

impl fmt::Debug for SecretResolver<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretResolver")
            .field("manifest_dir", &self.manifest_dir)
            .finish_non_exhaustive()
    }
}

/// Secret bytes that never show up in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into().into_boxed_slice())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s.as_bytes())
    }
}

/// A bearer token (the admin API's), read from a reference that is never
/// the token itself. `Debug` never shows it.
#[derive(Clone)]
pub struct Token(Vec<u8>, Option<String>);

impl Token {
    /// Reads the token from `env:VAR` or `file:PATH` (trailing newlines
    /// dropped; a relative path starts from the working directory). A token
    /// written inline is refused: command lines are visible to every local
    /// user.
    pub fn resolve(reference: &str) -> Result<Self, String> {
        let reference = SecretRef::new(reference);
        if reference.is_literal() {
            return Err(
                "write `env:VAR` or `file:PATH`; a token on the command line is visible to every local user"
                    .into(),
            );
        }
        let source = reference.0.clone();
        SecretResolver::new(Path::new("."))
            .read(&reference)
            .map(|bytes| Self(bytes, Some(source)))
    }

    /// A token with these bytes (tests, embedding).
    pub fn new(token: impl Into<Vec<u8>>) -> Self {
        Self(token.into(), None)
    }

    /// The `env:VAR` or `file:PATH` it was read from, if any: what
    /// [`SecretRules::deny_host_secret`] keeps away from plugin manifests.
    pub fn reference(&self) -> Option<&str> {
        self.1.as_deref()
    }

    /// The `Authorization` header value that carries this token, marked
    /// sensitive so HTTP libraries never log it.
    pub fn bearer(&self) -> http::HeaderValue {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(&self.0);
        let mut value = http::HeaderValue::from_bytes(&value)
            .unwrap_or_else(|_| http::HeaderValue::from_static("Bearer invalid-token-bytes"));
        value.set_sensitive(true);
        value
    }

    /// Constant-time check of an `Authorization` header value. The scheme
    /// name `Bearer` is matched in any case (RFC 9110, section 11.1).
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(given) = authorization.and_then(|value| {
            let (scheme, credential) = value.split_at_checked(7)?;
            scheme
                .eq_ignore_ascii_case(b"Bearer ")
                .then_some(credential)
        }) else {
            return false;
        };
        // Hashing first makes the comparison equal-length, so its time says
        // nothing about the token's length either.
        Sha256::digest(given).ct_eq(&Sha256::digest(&self.0)).into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_read_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), b"from-file\r\n").unwrap();
        let env = |name: &str| match name {
            "SET" => Ok("from-env".to_owned()),
            "EMPTY" => Ok(String::new()),
            _ => Err(VarError::NotPresent),
        };
        let resolver = SecretResolver::with_env(dir.path(), &env);
        let read = |text: &str| resolver.read(&SecretRef::new(text));
        assert_eq!(read("env:SET").unwrap(), b"from-env");
        assert_eq!(read("file:token").unwrap(), b"from-file");
        assert_eq!(read("inline").unwrap(), b"inline");
        assert!(read("env:UNSET").unwrap_err().contains("UNSET is not set"));
        assert!(read("env:EMPTY").unwrap_err().contains("EMPTY is empty"));
        assert!(read("env:").unwrap_err().contains("needs a variable name"));
        assert!(read("file:").unwrap_err().contains("needs a path"));
        assert!(
            read("file:missing")
                .unwrap_err()
                .contains("cannot read secret file")
        );
        assert_eq!(read("").unwrap_err(), "is empty");
    }

    #[test]
    fn manifest_rules_keep_files_in_the_root_and_off_host_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("secrets");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("ok"), "fine\n").unwrap();
        std::fs::write(root.join("admin"), "admin\n").unwrap();
        std::fs::write(dir.path().join("outside"), "no\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("link")).unwrap();
        let admin = format!("file:{}", root.join("admin").display());
        let rules = SecretRules::new(&root)
            .unwrap()
            .deny_host_secret(&admin)
            .deny_host_secret("env:ADMIN_TOKEN_VAR");
        let env = |_: &str| Ok("value".to_owned());
        let resolver = SecretResolver::with_env(rules.root(), &env).with_rules(&rules);
        let read = |text: &str| resolver.read(&SecretRef::new(text));
        assert_eq!(read("file:ok").unwrap(), b"fine");
        assert_eq!(
            read(&format!("file:{}", root.join("ok").display())).unwrap(),
            b"fine"
        );
        assert!(
            read("file:sub/../ok")
                .unwrap_err()
                .contains("cannot read secret file")
        );
        for outside in [
            "file:../outside",
            "file:link",
            "file:/proc/self/environ",
            "file:/etc/passwd",
        ] {
            let err = read(outside).unwrap_err();
            assert!(
                err.contains("is outside the secrets folder"),
                "{outside}: {err}"
            );
        }
        let err = read("file:admin").unwrap_err();
        assert!(err.contains("host's own secrets"), "{err}");
        for var in [
            "HOOKHOST_ADMIN_TOKEN",
            "HOOKHOST_ANYTHING",
            "ADMIN_TOKEN_VAR",
        ] {
            let err = read(&format!("env:{var}")).unwrap_err();
            assert!(
                err.contains("one of the host's own variables"),
                "{var}: {err}"
            );
        }
        assert_eq!(read("env:PLUGIN_VAR").unwrap(), b"value");
        // Without rules (the host's own settings), everything is readable.
        let host = SecretResolver::with_env(dir.path(), &env);
        assert_eq!(host.read(&SecretRef::new("file:outside")).unwrap(), b"no");
        assert_eq!(
            host.read(&SecretRef::new("env:HOOKHOST_ADMIN_TOKEN"))
                .unwrap(),
            b"value"
        );
    }

    #[test]
    fn debug_never_shows_secret_bytes() {
        assert_eq!(
            format!("{:?}", Secret::from("hunter2")),
            "Secret(<redacted>)"
        );
        assert_eq!(
            format!("{:?}", SecretRef::new("hunter2")),
            "SecretRef(<literal, redacted>)"
        );
        assert_eq!(
            format!("{:?}", SecretRef::new("env:X")),
            "SecretRef(\"env:X\")"
        );
    }

    #[test]
    fn token_needs_the_bearer_scheme_and_the_exact_bytes() {
        let token = Token::new("s3cret");
        assert!(token.admits(Some(b"Bearer s3cret")));
        assert!(!token.admits(Some(b"Bearer s3cre")));
        assert!(!token.admits(Some(b"Bearer s3cret ")));
        // RFC 9110: the scheme name is case-insensitive, the token is not.
        assert!(token.admits(Some(b"bearer s3cret")));
        assert!(token.admits(Some(b"BEARER s3cret")));
        assert!(!token.admits(Some(b"Bearer S3CRET")));
        assert!(!token.admits(Some(b"Basic s3cret")));
        assert!(!token.admits(Some(b"s3cret")));
        assert!(!token.admits(None));
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
    }

    #[test]
    fn token_is_read_from_env_or_file_never_inline() {
        let err = Token::resolve("s3cret").unwrap_err();
        assert!(err.contains("env:VAR"), "{err}");
        let err = Token::resolve("env:HOOKHOST_TEST_SURELY_UNSET_TOKEN").unwrap_err();
        assert!(err.contains("HOOKHOST_TEST_SURELY_UNSET_TOKEN"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let token = Token::resolve(&format!("file:{}", path.display())).unwrap();
        assert!(token.admits(Some(b"Bearer from-file")));
        std::fs::write(&path, "\n").unwrap();
        assert!(Token::resolve(&format!("file:{}", path.display())).is_err());
    }
}
