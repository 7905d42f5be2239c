//! Secret references: how an operator points at a secret without writing it
//! down (`env:VAR`, `file:PATH`, or, discouraged, the secret itself), and
//! the bytes they name.
//!
//! Owns [`SecretRef`] (a reference as written), [`SecretResolver`] (reads
//! it, with `file:` paths relative to a base folder and an injectable
//! environment for tests) and [`Secret`] (bytes that never show up in
//! `Debug`). Used by webhook verification, plugin manifests (`[config]`) and
//! the admin token alike, so every secret is read by the same rules.
//! Does not own which references a caller accepts (the admin token refuses
//! literals; a manifest warns about them) or what a missing secret means.

use std::env::VarError;
use std::fmt;
use std::path::Path;

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

/// Reads `env:` and `file:` secret references. Environment lookup is
/// injectable so tests need not touch the process environment.
pub struct SecretResolver<'a> {
    manifest_dir: &'a Path,
    env: &'a dyn Fn(&str) -> Result<String, VarError>,
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
        }
    }

    pub fn with_env(
        manifest_dir: &'a Path,
        env: &'a dyn Fn(&str) -> Result<String, VarError>,
    ) -> Self {
        SecretResolver { manifest_dir, env }
    }

    /// The bytes `reference` names (a literal is itself), or what is wrong
    /// with it, without the field name (the caller adds it).
    pub fn read(&self, reference: &SecretRef) -> Result<Vec<u8>, String> {
        match reference.source() {
            Source::Env("") => {
                Err("`env:` needs a variable name, e.g. `env:WEBHOOK_SECRET`".into())
            }
            Source::Env(var) => match (self.env)(var) {
                Ok(value) if value.is_empty() => {
                    Err(format!("environment variable {var} is empty"))
                }
                Ok(value) => Ok(value.into_bytes()),
                Err(VarError::NotPresent) => Err(format!(
                    "environment variable {var} is not set (set it, or use `file:PATH`)"
                )),
                Err(VarError::NotUnicode(_)) => Err(format!(
                    "environment variable {var} is not valid UTF-8 (use `file:PATH` for binary secrets)"
                )),
            },
            Source::File("") => Err("`file:` needs a path, e.g. `file:secrets/github`".into()),
            Source::File(path) => {
                let path = self.manifest_dir.join(path);
                let mut bytes = std::fs::read(&path).map_err(|err| {
                    format!(
                        "cannot read secret file {}: {err} (relative paths start from the manifest's folder)",
                        path.display()
                    )
                })?;
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
pub struct Token(Vec<u8>);

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
        SecretResolver::new(Path::new("."))
            .read(&reference)
            .map(Self)
    }

    /// A token with these bytes (tests, embedding).
    pub fn new(token: impl Into<Vec<u8>>) -> Self {
        Self(token.into())
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
