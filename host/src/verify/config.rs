//! The `[verify]` table of a plugin manifest, validated once at load into a
//! ready [`Scheme`].
//!
//! ```toml
//! [verify]
//! scheme = "github"
//! secret = "env:GITHUB_WEBHOOK_SECRET"   # or secrets = [...] while rotating
//! ```
//!
//! Secret references are read through [`crate::secret::SecretResolver`],
//! once, here: the only I/O anywhere in [`super`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::discord::{self, Discord};
use super::generic::{self, Encoding, GenericHmac};
use super::github::{self, Github};
use super::gitlab::{self, Gitlab};
use super::graph::{self, Graph};
use super::hubspot::{self, Hubspot};
use super::linear::{self, Linear};
use super::mailgun::{self, Mailgun};
use super::meta::{self, Meta};
use super::paddle::{self, Paddle};
use super::pubsub::{self, Pubsub};
use super::sendgrid::{self, Sendgrid};
use super::shopify::{self, Shopify};
use super::slack::{self, Slack};
use super::sns::{self, Sns};
use super::square::{self, Square};
use super::standard_webhooks::{self, StandardWebhooks};
use super::stripe::{self, Stripe};
use super::token::{self, Token};
use super::twilio::{self, Twilio};
use super::twitch::{self, Twitch};
use super::zoom::{self, Zoom};
use super::{Algorithm, Scheme, Secret, scheme_names};
use crate::secret::{SecretRef, SecretResolver};

/// Used when `tolerance` is not set: what Stripe, Slack and Standard
/// Webhooks all recommend.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The `[verify]` table as written. Turned into a scheme by [`build`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    /// One of [`scheme_names`].
    pub scheme: String,
    /// `env:VAR`, `file:PATH` or the secret itself. Exactly one of `secret`
    /// and `secrets` is required.
    pub secret: Option<SecretRef>,
    /// Several secrets, any of which may match: for rotation. Requests are
    /// signed (by `hookhost send`) with the first.
    pub secrets: Option<Vec<SecretRef>>,
    /// How far a signed timestamp may be from now, e.g. `5m`. Default 5
    /// minutes. Only for `stripe`, `slack` and `standard-webhooks`.
    pub tolerance: Option<String>,
    /// Header carrying the token or signature. `token`: default
    /// `Authorization`; `hmac`: required.
    pub header: Option<String>,
    /// Text before the token or signature, matched ignoring ASCII case.
    /// `token`: default `Bearer `; `hmac`: default none (e.g. `sha256=`).
    pub prefix: Option<String>,
    /// `hmac` only: `sha1`, `sha256` (default) or `sha512`.
    pub algorithm: Option<String>,
    /// `hmac` only: `hex` (default) or `base64`.
    pub encoding: Option<String>,
    /// `twilio` only: the public URL Twilio calls, without query. Default:
    /// rebuilt from the request's `Host` and `X-Forwarded-Proto` headers.
    pub url: Option<String>,
    /// Key-pair schemes (`discord`, `standard-webhooks` `v1a`): the
    /// sender's public key, as the sender shows it. Configuration, not a
    /// secret: written inline.
    pub public_key: Option<String>,
    /// Several public keys, any of which may match: for rotation.
    pub public_keys: Option<Vec<String>>,
    /// `hmac` only: the signed string, e.g. `"{timestamp}.{body}"`.
    /// Default: the body alone.
    pub template: Option<String>,
    /// `hmac` only: the header carrying `{timestamp}` (Unix seconds).
    pub timestamp_header: Option<String>,
    /// `sns` only: hosts `SigningCertURL` and `SubscribeURL` may name
    /// (`*` is one DNS label; `host:PORT` allows that port, else none may
    /// be named). Default `["sns.*.amazonaws.com"]`.
    pub cert_hosts: Option<Vec<String>>,
    /// `sns` only: confirm a `SubscriptionConfirmation` by fetching its
    /// `SubscribeURL`. Default false (answered, left for the operator).
    pub confirm: Option<bool>,
    /// `pubsub` only: where Google's signing keys are published, an
    /// `https://` URL (the host fetches keys over HTTPS only). Default
    /// Google's (`https://www.googleapis.com/oauth2/v3/certs`).
    pub jwks_url: Option<String>,
    /// `pubsub` only: the `aud` the push subscription puts in its tokens.
    /// Required.
    pub audience: Option<String>,
    /// `pubsub` only: the service account the tokens must be for.
    pub email: Option<String>,
    /// `meta` only: the verify token typed next to the callback URL in the
    /// app dashboard (`env:`/`file:` like any secret). Required.
    pub verify_token: Option<SecretRef>,
}

/// A manifest field that cannot be used, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    field: String,
    message: String,
}

impl ConfigError {
    /// The offending field, e.g. `verify.secrets[1]`.
    pub fn field(&self) -> &str {
        &self.field
    }

    fn invalid(field: &str, problem: impl fmt::Display) -> Self {
        let field = format!("verify.{field}");
        ConfigError {
            message: format!("`{field}`: {problem}"),
            field,
        }
    }

    fn unused(field: &str, users: &[&str], scheme: &str) -> Self {
        let field = format!("verify.{field}");
        let users: Vec<String> = users.iter().map(|u| format!("`{u}`")).collect();
        let users = match users.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => users.concat(),
        };
        ConfigError {
            message: format!(
                "`{field}` is only used by scheme {users} (this one is `{scheme}`): remove it"
            ),
            field,
        }
    }
}

/// The secret `reference` names, for manifest field `field` (under
/// `verify.`). An empty secret is an error: it would make every signature
/// forgeable.
fn resolve(
    resolver: &SecretResolver<'_>,
    field: &str,
    reference: &SecretRef,
) -> Result<Secret, ConfigError> {
    resolver
        .read(reference)
        .map(Secret::new)
        .map_err(|problem| ConfigError::invalid(field, problem))
}

/// Validates `raw` and resolves its secrets into a ready scheme. Errors name
/// the field and say how to fix it.
pub fn build(
    raw: &RawVerify,
    resolver: &SecretResolver<'_>,
) -> Result<Arc<dyn Scheme>, ConfigError> {
    let scheme = *scheme_names()
        .iter()
        .find(|name| **name == raw.scheme)
        .ok_or_else(|| {
            ConfigError::invalid(
                "scheme",
                format!(
                    "unknown scheme `{}` (expected one of {})",
                    raw.scheme,
                    scheme_names().join(", ")
                ),
            )
        })?;

    // Fields that only some schemes read; set elsewhere, they are mistakes.
    let scheme_specific: [(&str, bool, &[&str]); 16] = [
        ("jwks_url", raw.jwks_url.is_some(), &[pubsub::NAME]),
        ("audience", raw.audience.is_some(), &[pubsub::NAME]),
        ("email", raw.email.is_some(), &[pubsub::NAME]),
        ("cert_hosts", raw.cert_hosts.is_some(), &[sns::NAME]),
        ("confirm", raw.confirm.is_some(), &[sns::NAME]),
        ("template", raw.template.is_some(), &[generic::NAME]),
        (
            "timestamp_header",
            raw.timestamp_header.is_some(),
            &[generic::NAME],
        ),
        ("verify_token", raw.verify_token.is_some(), &[meta::NAME]),
        (
            "tolerance",
            raw.tolerance.is_some(),
            &[
                stripe::NAME,
                slack::NAME,
                standard_webhooks::NAME,
                discord::NAME,
                twitch::NAME,
                zoom::NAME,
                sendgrid::NAME,
                hubspot::NAME,
                linear::NAME,
                paddle::NAME,
                mailgun::NAME,
                generic::NAME,
            ],
        ),
        (
            "public_key",
            raw.public_key.is_some(),
            &[discord::NAME, standard_webhooks::NAME, sendgrid::NAME],
        ),
        (
            "public_keys",
            raw.public_keys.is_some(),
            &[discord::NAME, standard_webhooks::NAME, sendgrid::NAME],
        ),
        (
            "header",
            raw.header.is_some(),
            &[token::NAME, generic::NAME],
        ),
        (
            "prefix",
            raw.prefix.is_some(),
            &[token::NAME, generic::NAME],
        ),
        ("algorithm", raw.algorithm.is_some(), &[generic::NAME]),
        ("encoding", raw.encoding.is_some(), &[generic::NAME]),
        (
            "url",
            raw.url.is_some(),
            &[twilio::NAME, square::NAME, hubspot::NAME],
        ),
    ];
    for (field, is_set, users) in scheme_specific {
        if is_set && !users.contains(&scheme) {
            return Err(ConfigError::unused(field, users, scheme));
        }
    }

    let tolerance = raw
        .tolerance
        .as_deref()
        .map(parse_tolerance)
        .transpose()?
        .unwrap_or(match scheme {
            twitch::NAME => twitch::DEFAULT_TOLERANCE,
            linear::NAME => linear::DEFAULT_TOLERANCE,
            paddle::NAME => paddle::DEFAULT_TOLERANCE,
            _ => DEFAULT_TOLERANCE,
        });
    if scheme == square::NAME && raw.url.is_none() {
        return Err(ConfigError {
            field: "verify.url".into(),
            message: "`verify.url` is required for scheme `square`: Square signs the notification \
                      URL, e.g. `url = \"https://example.com/hooks/square\"` exactly as in its \
                      dashboard"
                .into(),
        });
    }
    if scheme == meta::NAME && raw.verify_token.is_none() {
        return Err(ConfigError {
            field: "verify.verify_token".into(),
            message: "`verify.verify_token` is required for scheme `meta`: the token Meta sends \
                      in its subscription check, e.g. `verify_token = \"env:META_VERIFY_TOKEN\"`"
                .into(),
        });
    }
    let header = raw.header.as_deref().map(parse_header).transpose()?;
    let prefix = raw.prefix.as_deref().map(check_prefix).transpose()?;
    let algorithm = raw.algorithm.as_deref().map(parse_algorithm).transpose()?;
    let encoding = raw.encoding.as_deref().map(parse_encoding).transpose()?;
    if scheme == generic::NAME && header.is_none() {
        return Err(missing_hmac_header());
    }
    if let Some(url) = raw.url.as_deref() {
        // Square signs its URL whole, query included; the others take the
        // query from the request.
        if scheme == square::NAME {
            let uri: http::Uri = url
                .parse()
                .map_err(|_| ConfigError::invalid("url", twilio::InvalidUrl::NotAbsolute))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
                return Err(ConfigError::invalid("url", twilio::InvalidUrl::NotAbsolute));
            }
        } else {
            twilio::check_url(url).map_err(|err| ConfigError::invalid("url", err))?;
        }
    }

    let timestamp_header = raw
        .timestamp_header
        .as_deref()
        .map(|text| {
            HeaderName::from_bytes(text.as_bytes()).map_err(|_| {
                ConfigError::invalid(
                    "timestamp_header",
                    format!("`{text}` is not a valid HTTP header name"),
                )
            })
        })
        .transpose()?;
    if raw.template.is_none() && timestamp_header.is_some() {
        return Err(ConfigError::invalid(
            "timestamp_header",
            "is only read by a `template` that uses `{timestamp}`: set `template` or remove it",
        ));
    }
    let template = raw
        .template
        .as_deref()
        .map(|text| {
            generic::Template::parse(text, timestamp_header.clone(), tolerance)
                .map_err(|err| ConfigError::invalid("template", err))
        })
        .transpose()?;
    let public_keys = public_keys(raw)?;
    if KEY_URL_SCHEMES.contains(&scheme) {
        if raw.secret.is_some() || raw.secrets.is_some() {
            let field = if raw.secret.is_some() {
                "secret"
            } else {
                "secrets"
            };
            return Err(ConfigError::invalid(
                field,
                format!(
                    "scheme `{scheme}` verifies with keys the sender publishes, not a shared \
                     secret: remove it"
                ),
            ));
        }
        let built: Arc<dyn Scheme> = match scheme {
            sns::NAME => {
                let hosts: Vec<String> = match &raw.cert_hosts {
                    Some(hosts) if hosts.is_empty() => {
                        return Err(ConfigError::invalid("cert_hosts", "list at least one host"));
                    }
                    Some(hosts) => hosts.clone(),
                    None => sns::DEFAULT_CERT_HOSTS
                        .iter()
                        .map(|h| h.to_string())
                        .collect(),
                };
                Arc::new(
                    Sns::new(&hosts, raw.confirm.unwrap_or(false)).map_err(|err| {
                        ConfigError::invalid(&format!("cert_hosts[{}]", err.index), &err)
                    })?,
                )
            }
            pubsub::NAME => {
                let audience = raw.audience.clone().ok_or_else(|| ConfigError {
                    field: "verify.audience".into(),
                    message: "`verify.audience` is required for scheme `pubsub`: the audience \
                              set on the push subscription, e.g. \
                              `audience = \"https://example.com/hooks/push\"`"
                        .into(),
                })?;
                let jwks_url = raw
                    .jwks_url
                    .clone()
                    .unwrap_or_else(|| pubsub::DEFAULT_JWKS_URL.to_owned());
                // The host fetches keys over HTTPS only (crate::fetch): an
                // `http://` URL would load, then answer every request 503.
                let not_https = || {
                    ConfigError::invalid(
                        "jwks_url",
                        "not an absolute https:// URL (keys are fetched over HTTPS only), \
                         e.g. `https://www.googleapis.com/oauth2/v3/certs`",
                    )
                };
                let uri: http::Uri = jwks_url.parse().map_err(|_| not_https())?;
                if uri.scheme_str() != Some("https") || uri.authority().is_none() {
                    return Err(not_https());
                }
                Arc::new(Pubsub::new(jwks_url, audience, raw.email.clone()))
            }
            other => unreachable!("key-URL scheme `{other}` is listed but not built"),
        };
        return Ok(built);
    }
    // Key-pair schemes take no secret; a secret given to one is a mistake.
    if KEY_PAIR_SCHEMES.contains(&scheme) {
        if raw.secret.is_some() || raw.secrets.is_some() {
            let field = if raw.secret.is_some() {
                "secret"
            } else {
                "secrets"
            };
            return Err(ConfigError::invalid(
                field,
                format!(
                    "scheme `{scheme}` verifies with the sender's public key: remove it and set \
                     `public_key = \"…\"`"
                ),
            ));
        }
        let (field, keys) = public_keys.ok_or_else(|| ConfigError {
            field: "verify.public_key".into(),
            message: format!(
                "`verify.public_key` is required for scheme `{scheme}` (the sender's public key \
                 as it shows it, e.g. `public_key = \"<{}>\"`; `public_keys = [...]` while \
                 rotating)",
                if scheme == sendgrid::NAME {
                    sendgrid::KEY_FORMAT
                } else {
                    discord::KEY_FORMAT
                }
            ),
        })?;
        let built: Arc<dyn Scheme> = match scheme {
            discord::NAME => Arc::new(
                Discord::new(&keys, tolerance)
                    .map_err(|err| ConfigError::invalid(&field(err.index), &err))?,
            ),
            sendgrid::NAME => Arc::new(
                Sendgrid::new(&keys, tolerance)
                    .map_err(|err| ConfigError::invalid(&field(err.index), &err))?,
            ),
            other => unreachable!("key-pair scheme `{other}` is listed but not built"),
        };
        return Ok(built);
    }

    // Every check above is pure; reading secrets comes last so that a
    // manifest's mistakes are reported before its environment's.
    let secrets = if scheme == standard_webhooks::NAME
        && public_keys.is_some()
        && raw.secret.is_none()
        && raw.secrets.is_none()
    {
        // `v1a` only: the sender signs with its private key alone.
        Resolved {
            fields: Vec::new(),
            values: Vec::new(),
        }
    } else {
        resolve_secrets(raw, scheme, resolver)?
    };

    let built: Arc<dyn Scheme> = match scheme {
        github::NAME => Arc::new(Github::new(secrets.into_values())),
        gitlab::NAME => {
            check_header_safe(&secrets, b"")?;
            Arc::new(Gitlab::new(secrets.into_values()))
        }
        stripe::NAME => Arc::new(Stripe::new(secrets.into_values(), tolerance)),
        slack::NAME => Arc::new(Slack::new(secrets.into_values(), tolerance)),
        shopify::NAME => Arc::new(Shopify::new(secrets.into_values())),
        standard_webhooks::NAME => {
            let fields = secrets.fields.clone();
            let mut scheme = StandardWebhooks::new(secrets.into_values(), tolerance)
                .map_err(|err| ConfigError::invalid(&fields[err.index], &err))?;
            if let Some((field, keys)) = public_keys {
                scheme = scheme
                    .with_public_keys(&keys)
                    .map_err(|err| ConfigError::invalid(&field(err.index), &err))?;
            }
            Arc::new(scheme)
        }
        token::NAME => {
            let prefix = prefix.unwrap_or_else(|| token::DEFAULT_PREFIX.to_owned());
            check_header_safe(&secrets, prefix.as_bytes())?;
            Arc::new(Token::new(
                secrets.into_values(),
                header.unwrap_or(token::DEFAULT_HEADER),
                prefix,
            ))
        }
        generic::NAME => {
            let mut scheme = GenericHmac::new(
                secrets.into_values(),
                header.ok_or_else(missing_hmac_header)?,
                algorithm.unwrap_or(Algorithm::Sha256),
                encoding.unwrap_or(Encoding::Hex),
                prefix.unwrap_or_default(),
            );
            if let Some(template) = template {
                scheme = scheme.with_template(template);
            }
            Arc::new(scheme)
        }
        twitch::NAME => Arc::new(Twitch::new(secrets.into_values(), tolerance)),
        zoom::NAME => Arc::new(Zoom::new(secrets.into_values(), tolerance)),
        meta::NAME => {
            let reference = raw.verify_token.as_ref().expect("checked above");
            let token = resolve(resolver, "verify_token", reference)?;
            let check = Resolved {
                fields: vec!["verify_token".into()],
                values: vec![token],
            };
            check_header_safe(&check, b"")?;
            Arc::new(Meta::new(
                secrets.into_values(),
                check.values.into_iter().next().expect("one token"),
            ))
        }
        graph::NAME => Arc::new(Graph::new(secrets.into_values())),
        square::NAME => Arc::new(Square::new(
            secrets.into_values(),
            raw.url.clone().expect("checked above"),
        )),
        hubspot::NAME => Arc::new(Hubspot::new(
            secrets.into_values(),
            raw.url.clone(),
            tolerance,
        )),
        linear::NAME => Arc::new(Linear::new(secrets.into_values(), tolerance)),
        paddle::NAME => Arc::new(Paddle::new(secrets.into_values(), tolerance)),
        mailgun::NAME => Arc::new(Mailgun::new(secrets.into_values(), tolerance)),
        twilio::NAME => Arc::new(
            Twilio::new(secrets.into_values(), raw.url.as_deref())
                .map_err(|err| ConfigError::invalid("url", err))?,
        ),
        other => unreachable!("scheme `{other}` is listed in scheme_names() but not built"),
    };
    Ok(built)
}

/// Schemes whose keys the host fetches from a URL (no secret).
const KEY_URL_SCHEMES: &[&str] = &[sns::NAME, pubsub::NAME];

/// Schemes that verify with a public key only.
const KEY_PAIR_SCHEMES: &[&str] = &[discord::NAME, sendgrid::NAME];

/// The field name of each public key (`public_key` or `public_keys[i]`).
type KeyField = fn(usize) -> String;

/// `public_key` or `public_keys`, with a way to name the entry at an index.
fn public_keys(raw: &RawVerify) -> Result<Option<(KeyField, Vec<String>)>, ConfigError> {
    match (&raw.public_key, &raw.public_keys) {
        (Some(_), Some(_)) => Err(ConfigError {
            field: "verify".into(),
            message: "`verify`: set `public_key` or `public_keys`, not both".into(),
        }),
        (None, None) => Ok(None),
        (Some(one), None) => Ok(Some((|_| "public_key".to_owned(), vec![one.clone()]))),
        (None, Some(list)) if list.is_empty() => Err(ConfigError::invalid(
            "public_keys",
            "list at least one public key",
        )),
        (None, Some(list)) => Ok(Some((|i| format!("public_keys[{i}]"), list.clone()))),
    }
}

/// Resolved secrets, with the manifest field each came from.
struct Resolved {
    fields: Vec<String>,
    values: Vec<Secret>,
}

impl Resolved {
    fn into_values(self) -> Vec<Secret> {
        self.values
    }
}

fn resolve_secrets(
    raw: &RawVerify,
    scheme: &str,
    resolver: &SecretResolver<'_>,
) -> Result<Resolved, ConfigError> {
    let refs: Vec<(String, &SecretRef)> = match (&raw.secret, &raw.secrets) {
        (Some(_), Some(_)) => {
            return Err(ConfigError {
                field: "verify".into(),
                message: "`verify`: set `secret` or `secrets`, not both".into(),
            });
        }
        (None, None) => {
            return Err(ConfigError {
                field: "verify.secret".into(),
                message: format!(
                    "`verify.secret` is required for scheme `{scheme}` (e.g. `secret = \"env:WEBHOOK_SECRET\"`, \
                     or `secrets = [...]` to accept several while rotating)"
                ),
            });
        }
        (Some(one), None) => vec![("secret".to_owned(), one)],
        (None, Some(list)) if list.is_empty() => {
            return Err(ConfigError::invalid("secrets", "list at least one secret"));
        }
        (None, Some(list)) => list
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("secrets[{i}]"), r))
            .collect(),
    };
    let mut resolved = Resolved {
        fields: Vec::new(),
        values: Vec::new(),
    };
    for (field, reference) in refs {
        resolved.values.push(resolve(resolver, &field, reference)?);
        resolved.fields.push(field);
    }
    Ok(resolved)
}

fn parse_tolerance(text: &str) -> Result<Duration, ConfigError> {
    let tolerance = humantime::parse_duration(text).map_err(|err| {
        ConfigError::invalid(
            "tolerance",
            format!("`{text}` is not a duration: {err} (e.g. `5m` or `300s`)"),
        )
    })?;
    if tolerance < Duration::from_secs(1) {
        return Err(ConfigError::invalid(
            "tolerance",
            "must be at least `1s`: timestamps are whole seconds",
        ));
    }
    Ok(tolerance)
}

fn parse_algorithm(name: &str) -> Result<Algorithm, ConfigError> {
    Algorithm::from_name(name).ok_or_else(|| {
        let expected = Algorithm::NAMES.join(", ");
        ConfigError::invalid(
            "algorithm",
            format!("unknown algorithm `{name}` (expected one of {expected})"),
        )
    })
}

fn parse_encoding(name: &str) -> Result<Encoding, ConfigError> {
    Encoding::from_name(name).ok_or_else(|| {
        let expected = Encoding::NAMES.join(", ");
        ConfigError::invalid(
            "encoding",
            format!("unknown encoding `{name}` (expected one of {expected})"),
        )
    })
}

fn missing_hmac_header() -> ConfigError {
    ConfigError {
        field: "verify.header".into(),
        message: "`verify.header` is required for scheme `hmac`: name the header that carries \
                  the signature, e.g. `header = \"X-Signature\"`"
            .into(),
    }
}

fn parse_header(text: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(text.as_bytes()).map_err(|_| {
        ConfigError::invalid(
            "header",
            format!("`{text}` is not a valid HTTP header name"),
        )
    })
}

fn check_prefix(text: &str) -> Result<String, ConfigError> {
    if HeaderValue::from_str(text).is_err() {
        return Err(ConfigError::invalid(
            "prefix",
            "must be printable ASCII: it is part of a header value",
        ));
    }
    Ok(text.to_owned())
}

/// Token schemes compare the header text with the secret, so a secret that
/// cannot travel as header text would silently match nothing.
fn check_header_safe(secrets: &Resolved, prefix: &[u8]) -> Result<(), ConfigError> {
    for (field, secret) in secrets.fields.iter().zip(&secrets.values) {
        let value = [prefix, secret.expose()].concat();
        let text_ok = HeaderValue::from_bytes(&value).is_ok_and(|v| v.to_str().is_ok());
        let trimmed = secret.expose().trim_ascii() == secret.expose();
        if !text_ok || !trimmed {
            return Err(ConfigError::invalid(
                field,
                "must be printable ASCII without leading or trailing spaces: it is sent as a header value",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::env::VarError;
    use std::path::Path;

    use super::*;

    fn raw(scheme: &str) -> RawVerify {
        RawVerify {
            scheme: scheme.into(),
            secret: Some(SecretRef::new("literal-secret")),
            ..RawVerify::default()
        }
    }

    fn build_with_env(
        raw: &RawVerify,
        vars: &[(&str, &str)],
    ) -> Result<Arc<dyn Scheme>, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |name: &str| vars.get(name).cloned().ok_or(VarError::NotPresent);
        build(
            raw,
            &SecretResolver::with_env(Path::new("/nonexistent"), &env),
        )
    }

    fn error(raw: &RawVerify) -> String {
        build_with_env(raw, &[])
            .expect_err("config should be refused")
            .to_string()
    }

    /// The Ed25519 public key of the seed `[1; 32]`.
    const DISCORD_KEY: &str = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";

    #[test]
    fn key_pair_schemes_take_public_keys_not_secrets() {
        let with_secret = raw("discord");
        assert!(
            error(&with_secret).starts_with(
                "`verify.secret`: scheme `discord` verifies with the sender's public key"
            ),
            "{}",
            error(&with_secret)
        );
        let neither = RawVerify {
            secret: None,
            ..raw("discord")
        };
        assert!(
            error(&neither).starts_with("`verify.public_key` is required for scheme `discord`")
        );
        let bad = RawVerify {
            secret: None,
            public_keys: Some(vec![DISCORD_KEY.into(), "nothex".into()]),
            ..raw("discord")
        };
        assert_eq!(
            error(&bad),
            "`verify.public_keys[1]`: not an Ed25519 public key (expected 64 hex digits, the \
             application's public key)"
        );
        let both = RawVerify {
            secret: None,
            public_key: Some(DISCORD_KEY.into()),
            public_keys: Some(vec![DISCORD_KEY.into()]),
            ..raw("discord")
        };
        assert_eq!(
            error(&both),
            "`verify`: set `public_key` or `public_keys`, not both"
        );
        let elsewhere = RawVerify {
            public_key: Some(DISCORD_KEY.into()),
            ..raw("github")
        };
        assert!(error(&elsewhere).starts_with("`verify.public_key` is only used by scheme"));
    }

    #[test]
    fn hmac_templates_are_checked_at_load() {
        let templated = RawVerify {
            header: Some("X-Signature".into()),
            template: Some("{timestamp}.{body}".into()),
            timestamp_header: Some("X-Timestamp".into()),
            tolerance: Some("2m".into()),
            ..raw("hmac")
        };
        assert!(build_with_env(&templated, &[]).is_ok());
        let no_header = RawVerify {
            timestamp_header: None,
            ..templated.clone()
        };
        assert_eq!(
            error(&no_header),
            "`verify.template`: uses `{timestamp}`: set `timestamp_header` to the header that carries it"
        );
        let typo = RawVerify {
            template: Some("{timestmp}.{body}".into()),
            ..templated.clone()
        };
        assert!(error(&typo).starts_with("`verify.template`: unknown placeholder `{timestmp}`"));
        let stray = RawVerify {
            template: None,
            ..templated
        };
        assert!(
            error(&stray).starts_with("`verify.timestamp_header`: is only read by a `template`")
        );
    }

    #[test]
    fn meta_needs_a_verify_token() {
        assert!(
            error(&raw("meta")).starts_with("`verify.verify_token` is required for scheme `meta`")
        );
        let unset = RawVerify {
            verify_token: Some(SecretRef::new("env:META_TOKEN")),
            ..raw("meta")
        };
        assert_eq!(
            error(&unset),
            "`verify.verify_token`: environment variable META_TOKEN is not set (set it, or use `file:PATH`)"
        );
        let elsewhere = RawVerify {
            verify_token: Some(SecretRef::new("t")),
            ..raw("github")
        };
        assert!(
            error(&elsewhere).starts_with("`verify.verify_token` is only used by scheme `meta`")
        );
    }

    #[test]
    fn a_jwks_url_must_be_https_since_keys_are_fetched_over_https_only() {
        let pubsub = |url: &str| RawVerify {
            scheme: "pubsub".into(),
            audience: Some("https://example.com/hooks/push".into()),
            jwks_url: Some(url.into()),
            ..RawVerify::default()
        };
        for url in [
            "http://127.0.0.1:8080/jwks",
            "ftp://example.com/jwks",
            "/jwks",
        ] {
            let message = error(&pubsub(url));
            assert!(
                message.starts_with("`verify.jwks_url`: not an absolute https:// URL"),
                "{url}: {message}"
            );
        }
        assert!(build_with_env(&pubsub("https://127.0.0.1:8443/jwks"), &[]).is_ok());
    }

    #[test]
    fn every_scheme_name_builds() {
        for name in scheme_names() {
            let mut raw = raw(name);
            match *name {
                "hmac" => raw.header = Some("X-Signature".into()),
                "standard-webhooks" => {
                    raw.secret = Some(SecretRef::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
                }
                "discord" => {
                    raw.secret = None;
                    raw.public_key = Some(DISCORD_KEY.into());
                }
                "meta" => raw.verify_token = Some(SecretRef::new("tok")),
                "square" => raw.url = Some("https://example.com/hooks/square".into()),
                "sns" => raw.secret = None,
                "pubsub" => {
                    raw.secret = None;
                    raw.audience = Some("https://example.com/hooks/push".into());
                }
                "sendgrid" => {
                    raw.secret = None;
                    raw.public_key = Some(
                        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==".into(),
                    );
                }
                _ => {}
            }
            let scheme = build_with_env(&raw, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(scheme.name(), *name);
        }
    }

    #[test]
    fn parses_from_toml_shaped_input_and_rejects_unknown_fields() {
        let ok: RawVerify =
            serde_json::from_str(r#"{"scheme":"github","secrets":["env:A","file:b"]}"#).unwrap();
        assert_eq!(ok.secrets.unwrap().len(), 2);
        let err = serde_json::from_str::<RawVerify>(
            r#"{"scheme":"github","secret":"x","tolerence":"5m"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `tolerence`"), "{err}");
    }

    #[test]
    fn unknown_scheme_lists_the_known_ones() {
        assert_eq!(
            error(&raw("githb")),
            "`verify.scheme`: unknown scheme `githb` (expected one of github, gitlab, stripe, slack, shopify, \
             standard-webhooks, token, hmac, twilio, discord, twitch, zoom, meta, graph, sendgrid, square, hubspot, linear, paddle, mailgun, sns, pubsub)"
        );
    }

    #[test]
    fn unset_environment_variable_names_it_and_the_fix() {
        let raw = RawVerify {
            secret: Some(SecretRef::new("env:GITHUB_SECRET")),
            ..raw("github")
        };
        assert_eq!(
            error(&raw),
            "`verify.secret`: environment variable GITHUB_SECRET is not set (set it, or use `file:PATH`)"
        );
        assert_eq!(
            build_with_env(&raw, &[("GITHUB_SECRET", "")])
                .unwrap_err()
                .to_string(),
            "`verify.secret`: environment variable GITHUB_SECRET is empty"
        );
        assert!(build_with_env(&raw, &[("GITHUB_SECRET", "s3cret")]).is_ok());
    }

    #[test]
    fn errors_in_a_secrets_list_name_the_entry() {
        let raw = RawVerify {
            secret: None,
            secrets: Some(vec![SecretRef::new("env:OLD"), SecretRef::new("env:NEW")]),
            ..raw("github")
        };
        let err = build_with_env(&raw, &[("OLD", "x")]).unwrap_err();
        assert_eq!(err.field(), "verify.secrets[1]");
        assert_eq!(
            err.to_string(),
            "`verify.secrets[1]`: environment variable NEW is not set (set it, or use `file:PATH`)"
        );
    }

    #[test]
    fn secret_and_secrets_are_exclusive_and_one_is_required() {
        let both = RawVerify {
            secrets: Some(vec![SecretRef::new("x")]),
            ..raw("github")
        };
        assert_eq!(
            error(&both),
            "`verify`: set `secret` or `secrets`, not both"
        );
        let neither = RawVerify {
            secret: None,
            ..raw("slack")
        };
        assert!(error(&neither).starts_with("`verify.secret` is required for scheme `slack`"));
        let empty = RawVerify {
            secret: None,
            secrets: Some(vec![]),
            ..raw("slack")
        };
        assert_eq!(error(&empty), "`verify.secrets`: list at least one secret");
        let blank = RawVerify {
            secret: Some(SecretRef::new("")),
            ..raw("slack")
        };
        assert_eq!(error(&blank), "`verify.secret`: is empty");
    }

    #[test]
    fn fields_of_other_schemes_are_refused() {
        let header = RawVerify {
            header: Some("X-Sig".into()),
            ..raw("github")
        };
        assert_eq!(
            error(&header),
            "`verify.header` is only used by scheme `token` or `hmac` (this one is `github`): remove it"
        );
        let tolerance = RawVerify {
            tolerance: Some("5m".into()),
            ..raw("shopify")
        };
        assert!(error(&tolerance).starts_with(
            "`verify.tolerance` is only used by scheme `stripe`, `slack`, `standard-webhooks`"
        ));
        assert!(error(&tolerance).ends_with("(this one is `shopify`): remove it"));
        let url = RawVerify {
            url: Some("https://x.com".into()),
            ..raw("slack")
        };
        assert!(error(&url).starts_with("`verify.url` is only used by scheme `twilio`"));
        let algorithm = RawVerify {
            algorithm: Some("sha1".into()),
            ..raw("token")
        };
        assert!(error(&algorithm).starts_with("`verify.algorithm` is only used by scheme `hmac`"));
    }

    #[test]
    fn bad_values_name_the_field() {
        let cases = [
            (
                RawVerify {
                    tolerance: Some("5 parsecs".into()),
                    ..raw("slack")
                },
                "`verify.tolerance`: `5 parsecs` is not a duration",
            ),
            (
                RawVerify {
                    tolerance: Some("0s".into()),
                    ..raw("slack")
                },
                "`verify.tolerance`: must be at least `1s`",
            ),
            (
                RawVerify {
                    header: Some("X Sig".into()),
                    ..raw("token")
                },
                "`verify.header`: `X Sig` is not a valid HTTP header name",
            ),
            (raw("hmac"), "`verify.header` is required for scheme `hmac`"),
            (
                RawVerify {
                    header: Some("x-sig".into()),
                    algorithm: Some("md5".into()),
                    ..raw("hmac")
                },
                "`verify.algorithm`: unknown algorithm `md5` (expected one of sha1, sha256, sha512)",
            ),
            (
                RawVerify {
                    header: Some("x-sig".into()),
                    encoding: Some("b64".into()),
                    ..raw("hmac")
                },
                "`verify.encoding`: unknown encoding `b64` (expected one of hex, base64)",
            ),
            (
                RawVerify {
                    url: Some("/sms".into()),
                    ..raw("twilio")
                },
                "`verify.url`: not an absolute http(s) URL",
            ),
            (
                RawVerify {
                    secret: Some(SecretRef::new("whsec_???")),
                    ..raw("standard-webhooks")
                },
                "`verify.secret`: not a Standard Webhooks secret (expected `whsec_` followed by base64)",
            ),
            (
                RawVerify {
                    secret: Some(SecretRef::new("tok\u{e9}n")),
                    ..raw("gitlab")
                },
                "`verify.secret`: must be printable ASCII",
            ),
            (
                RawVerify {
                    secret: Some(SecretRef::new("token ")),
                    ..raw("token")
                },
                "`verify.secret`: must be printable ASCII",
            ),
            (
                RawVerify {
                    secret: Some(SecretRef::new("env:")),
                    ..raw("github")
                },
                "`verify.secret`: `env:` needs a variable name",
            ),
        ];
        for (raw, want) in cases {
            let got = error(&raw);
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn manifest_mistakes_are_reported_before_missing_secrets() {
        let raw = RawVerify {
            secret: Some(SecretRef::new("env:UNSET")),
            tolerance: Some("soon".into()),
            ..raw("slack")
        };
        assert!(error(&raw).starts_with("`verify.tolerance`"));
    }

    #[test]
    fn file_secrets_are_read_relative_to_the_manifest_and_lose_trailing_newlines() {
        let dir = std::env::temp_dir().join(format!("hookhost-verify-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("secrets")).unwrap();
        std::fs::write(dir.join("secrets/github"), b"s3cret\r\n").unwrap();
        std::fs::write(dir.join("secrets/empty"), b"\n").unwrap();
        let resolver = SecretResolver::new(&dir);

        let secret = resolve(&resolver, "secret", &SecretRef::new("file:secrets/github")).unwrap();
        assert_eq!(secret.expose(), b"s3cret");
        let absolute = format!("file:{}", dir.join("secrets/github").display());
        assert_eq!(
            resolve(&resolver, "secret", &SecretRef::new(absolute))
                .unwrap()
                .expose(),
            b"s3cret"
        );

        let empty = resolve(&resolver, "secret", &SecretRef::new("file:secrets/empty"))
            .unwrap_err()
            .to_string();
        assert!(empty.ends_with("secrets/empty is empty"), "{empty}");
        let missing = resolve(&resolver, "secrets[0]", &SecretRef::new("file:nope"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("`verify.secrets[0]`: cannot read secret file "),
            "{missing}"
        );
        assert!(
            missing.contains("relative paths start from the manifest's folder"),
            "{missing}"
        );

        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn built_scheme_verifies_what_it_signs() {
        let raw = RawVerify {
            secrets: Some(vec![SecretRef::new("env:NEW"), SecretRef::new("env:OLD")]),
            secret: None,
            tolerance: Some("10m".into()),
            ..raw("slack")
        };
        let scheme = build_with_env(&raw, &[("NEW", "new"), ("OLD", "old")]).unwrap();
        let uri: http::Uri = "/hooks/slack".parse().unwrap();
        let headers = scheme.sign(b"{}", &uri, 1_000_000).unwrap();
        let input = super::super::Input::post(&headers, b"{}", &uri, 1_000_000 + 540);
        assert!(
            matches!(
                scheme.verify(&input),
                Ok(super::super::Verdict::Deliver { .. })
            ),
            "{:?}",
            scheme.verify(&input)
        );
    }

    #[test]
    fn debug_output_hides_literal_secrets_and_resolved_ones() {
        let raw = RawVerify {
            secret: None,
            secrets: Some(vec![
                SecretRef::new("hunter2"),
                SecretRef::new("env:SECRET"),
            ]),
            ..raw("github")
        };
        let debug = format!("{raw:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("env:SECRET"),
            "{debug}"
        );
        let scheme = build_with_env(&raw, &[("SECRET", "swordfish")]).unwrap();
        let debug = format!("{scheme:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("swordfish"),
            "{debug}"
        );
        assert!(SecretRef::new("hunter2").is_literal() && !SecretRef::new("env:X").is_literal());
    }
}
