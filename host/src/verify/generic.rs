//! Scheme `hmac`: for senders without a scheme of their own (internal
//! services, smaller SaaS). One header carries an optional prefix and the
//! hex or base64 HMAC of the raw body, with SHA-1, SHA-256 or SHA-512.
//!
//! By default the MAC covers the raw body alone, with no timestamp, so a
//! captured request can be replayed. A signed-string `template` (e.g.
//! `"{timestamp}.{body}"`, with `timestamp_header`) makes an unlisted
//! timestamped provider a manifest rather than a code change: `{timestamp}`
//! is the header's value as sent (Unix seconds, checked against the
//! tolerance both ways), `{body}` the raw body, anything else literal text
//! (`{{` and `}}` for braces). A templated delivery carries a replay key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName};

use super::mac::{self, Algorithm};
use super::{
    Input, Outgoing, Refusal, ReplayKey, Scheme, Secret, SignError, Signed, Verdict, Window,
    check_timestamp, decode_base64, decode_hex, header_value, parse_unix_seconds, required_header,
    tolerance_secs,
};

pub(crate) const NAME: &str = "hmac";

/// How the MAC is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Either case is accepted; lowercase is sent.
    Hex,
    /// Standard alphabet, padded.
    Base64,
}

impl Encoding {
    pub const NAMES: &'static [&'static str] = &["hex", "base64"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hex" => Some(Encoding::Hex),
            "base64" => Some(Encoding::Base64),
            _ => None,
        }
    }

    fn encode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Hex => hex::encode(bytes),
            Encoding::Base64 => STANDARD.encode(bytes),
        }
    }

    fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Encoding::Hex => decode_hex(text),
            Encoding::Base64 => decode_base64(text),
        }
    }
}

#[derive(Debug)]
pub struct GenericHmac {
    header: HeaderName,
    algorithm: Algorithm,
    encoding: Encoding,
    prefix: String,
    secrets: Vec<Secret>,
    template: Option<Template>,
}

/// A signed-string template, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    timestamp_header: Option<HeaderName>,
    tolerance: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Timestamp,
    Body,
}

/// Why a template is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTemplate {
    #[error(
        "unknown placeholder `{{{0}}}` (known: `{{timestamp}}`, `{{body}}`; `{{{{` for a brace)"
    )]
    UnknownPlaceholder(String),
    #[error("an unclosed `{{` (write `{{{{` for a literal brace)")]
    Unclosed,
    #[error(
        "must contain `{{body}}`: a signature that does not cover the body vouches for nothing"
    )]
    NoBody,
    #[error("uses `{{timestamp}}`: set `timestamp_header` to the header that carries it")]
    NoTimestampHeader,
}

impl Template {
    /// Parses `text`; `timestamp_header` is required when it uses
    /// `{timestamp}`.
    pub fn parse(
        text: &str,
        timestamp_header: Option<HeaderName>,
        tolerance: std::time::Duration,
    ) -> Result<Self, InvalidTemplate> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if rest.starts_with("{{") || rest.starts_with("}}") {
                literal.push(c);
                rest = &rest[2..];
                continue;
            }
            if c == '{' {
                let end = rest.find('}').ok_or(InvalidTemplate::Unclosed)?;
                let piece = match &rest[1..end] {
                    "timestamp" => Piece::Timestamp,
                    "body" => Piece::Body,
                    other => return Err(InvalidTemplate::UnknownPlaceholder(other.to_owned())),
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(piece);
                rest = &rest[end + 1..];
                continue;
            }
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        if !pieces.contains(&Piece::Body) {
            return Err(InvalidTemplate::NoBody);
        }
        if pieces.contains(&Piece::Timestamp) && timestamp_header.is_none() {
            return Err(InvalidTemplate::NoTimestampHeader);
        }
        Ok(Template {
            pieces,
            timestamp_header,
            tolerance: tolerance_secs(tolerance),
        })
    }

    fn parts<'a>(&'a self, timestamp: &'a str, body: &'a [u8]) -> Vec<&'a [u8]> {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.as_bytes(),
                Piece::Timestamp => timestamp.as_bytes(),
                Piece::Body => body,
            })
            .collect()
    }
}

impl GenericHmac {
    /// `prefix` (e.g. `sha256=`) is matched ignoring ASCII case.
    pub fn new(
        secrets: Vec<Secret>,
        header: HeaderName,
        algorithm: Algorithm,
        encoding: Encoding,
        prefix: String,
    ) -> Self {
        GenericHmac {
            header,
            algorithm,
            encoding,
            prefix,
            secrets,
            template: None,
        }
    }

    /// Signs `template` instead of the bare body.
    pub fn with_template(mut self, template: Template) -> Self {
        self.template = Some(template);
        self
    }
}

impl Scheme for GenericHmac {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let value = required_header(
            input.headers,
            &self.header,
            Refusal::MissingSignature,
            Refusal::MalformedSignature,
        )?;
        let encoded = value
            .get(..self.prefix.len())
            .filter(|p| p.eq_ignore_ascii_case(&self.prefix))
            .map(|_| &value[self.prefix.len()..]);
        let tag = encoded
            .and_then(|e| self.encoding.decode(e))
            .ok_or_else(|| Refusal::MalformedSignature(self.header.clone()))?;
        let Some(template) = &self.template else {
            return if mac::any_key_matches(self.algorithm, &self.secrets, &[input.body], &[tag]) {
                Ok(Verdict::deliver())
            } else {
                Err(Refusal::BadSignature)
            };
        };
        let (timestamp, ts) = match &template.timestamp_header {
            Some(name) => {
                let text = required_header(
                    input.headers,
                    name,
                    Refusal::MissingTimestamp,
                    Refusal::MalformedTimestamp,
                )?;
                let ts = parse_unix_seconds(text)
                    .ok_or_else(|| Refusal::MalformedTimestamp(name.clone()))?;
                check_timestamp(ts, input.now, template.tolerance, Window::BothWays)?;
                (text, Some(ts))
            }
            None => ("", None),
        };
        if !mac::any_key_matches(
            self.algorithm,
            &self.secrets,
            &template.parts(timestamp, input.body),
            &[tag],
        ) {
            return Err(Refusal::BadSignature);
        }
        Ok(Verdict::Deliver {
            signed_id: None,
            replay: ts.map(|ts| {
                ReplayKey::new(
                    NAME,
                    &[timestamp.as_bytes(), value.as_bytes()],
                    ts.saturating_add(template.tolerance),
                )
            }),
        })
    }

    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let key = self.secrets.first().ok_or(SignError::NoSecret)?;
        let timestamp = out.now.to_string();
        let mut headers = HeaderMap::new();
        let tag = match &self.template {
            None => mac::compute(self.algorithm, key, &[out.body]),
            Some(template) => {
                if let Some(name) = &template.timestamp_header {
                    headers.insert(name.clone(), header_value(&timestamp)?);
                }
                mac::compute(self.algorithm, key, &template.parts(&timestamp, out.body))
            }
        };
        headers.insert(
            self.header.clone(),
            header_value(&format!(
                "{}{}",
                self.prefix,
                self.encoding.encode(tag.as_bytes())
            ))?,
        );
        Signed::post(out, headers)
    }

    /// The configured header carries a MAC of the body under the secret.
    fn secret_headers(&self) -> Vec<HeaderName> {
        vec![self.header.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with, verify_at};
    use super::*;

    fn sha1_hex(secrets: Vec<Secret>) -> GenericHmac {
        GenericHmac::new(
            secrets,
            HeaderName::from_static("x-signature"),
            Algorithm::Sha1,
            Encoding::Hex,
            "sha1=".into(),
        )
    }

    testutil::scheme_contract!(sha1_hex, ["first", "second"], covers_body);

    mod sha256_base64 {
        use super::super::super::testutil;
        use super::*;

        fn make(secrets: Vec<Secret>) -> GenericHmac {
            GenericHmac::new(
                secrets,
                HeaderName::from_static("x-sig"),
                Algorithm::Sha256,
                Encoding::Base64,
                String::new(),
            )
        }

        testutil::scheme_contract!(make, ["first", "second"], covers_body);
    }

    mod sha512_hex {
        use super::super::super::testutil;
        use super::*;

        fn make(secrets: Vec<Secret>) -> GenericHmac {
            GenericHmac::new(
                secrets,
                HeaderName::from_static("x-sig"),
                Algorithm::Sha512,
                Encoding::Hex,
                String::new(),
            )
        }

        testutil::scheme_contract!(make, ["first", "second"], covers_body);
    }

    mod templated {
        use super::super::super::testutil;
        use super::*;

        fn make(secrets: Vec<Secret>) -> GenericHmac {
            GenericHmac::new(
                secrets,
                HeaderName::from_static("x-signature"),
                Algorithm::Sha256,
                Encoding::Hex,
                "v1=".into(),
            )
            .with_template(
                Template::parse(
                    "{timestamp}.{body}",
                    Some(HeaderName::from_static("x-timestamp")),
                    std::time::Duration::from_secs(300),
                )
                .unwrap(),
            )
        }

        testutil::scheme_contract!(make, ["first", "second"], covers_body);

        #[test]
        fn the_template_is_what_is_signed_and_the_timestamp_is_checked() {
            // HMAC-SHA256(key="first", msg="1700000000.{}"), as Stripe-style
            // senders compute it (same construction as Stripe's v1).
            let scheme = make(vec![Secret::from("first")]);
            let want = hex::encode(
                mac::compute(
                    Algorithm::Sha256,
                    &Secret::from("first"),
                    &[b"1700000000.{}"],
                )
                .as_bytes(),
            );
            let headers = scheme
                .sign(b"{}", &testutil::URI.parse().unwrap(), NOW)
                .unwrap();
            assert_eq!(headers["x-signature"], format!("v1={want}").as_str());
            assert_eq!(headers["x-timestamp"], "1700000000");
            assert!(matches!(
                verify_at(&scheme, &headers, b"{}", NOW + 301),
                Err(Refusal::TimestampOutsideTolerance { .. })
            ));
            let moved = {
                let mut h = headers.clone();
                h.insert("x-timestamp", (NOW + 1).to_string().parse().unwrap());
                h
            };
            assert_eq!(
                verify_at(&scheme, &moved, b"{}", NOW),
                Err(Refusal::BadSignature)
            );
            let no_ts = signed_with(&scheme, b"{}", "x-timestamp", None);
            assert_eq!(
                verify_at(&scheme, &no_ts, b"{}", NOW),
                Err(Refusal::MissingTimestamp(name("x-timestamp")))
            );
        }

        #[test]
        fn bad_templates_say_why() {
            let tol = std::time::Duration::from_secs(300);
            let ts = || Some(HeaderName::from_static("x-ts"));
            assert_eq!(
                Template::parse("{timestamp}.{bdy}", ts(), tol),
                Err(InvalidTemplate::UnknownPlaceholder("bdy".into()))
            );
            assert_eq!(
                Template::parse("{timestamp}", ts(), tol),
                Err(InvalidTemplate::NoBody)
            );
            assert_eq!(
                Template::parse("{timestamp}:{body}", None, tol),
                Err(InvalidTemplate::NoTimestampHeader)
            );
            assert_eq!(
                Template::parse("{body", ts(), tol),
                Err(InvalidTemplate::Unclosed)
            );
            let braces = Template::parse("{{v0}}:{body}", None, tol).unwrap();
            assert_eq!(braces.parts("", b"x"), vec![&b"{v0}:"[..], b"x"]);
        }
    }

    #[test]
    fn github_style_configuration_verifies_the_github_vector() {
        let v = &testutil::vectors("github")[0];
        let scheme = GenericHmac::new(
            vec![Secret::from(v["secret"].as_str().unwrap())],
            HeaderName::from_static("x-hub-signature-256"),
            Algorithm::Sha256,
            Encoding::Hex,
            "sha256=".into(),
        );
        let body = v["body"].as_str().unwrap().as_bytes();
        assert_eq!(
            verify_at(&scheme, &testutil::vector_headers(v), body, NOW),
            Ok(())
        );
    }

    #[test]
    fn missing_header_is_missing_signature() {
        let scheme = sha1_hex(vec![Secret::from("s")]);
        let headers = signed_with(&scheme, b"{}", "x-signature", None);
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::MissingSignature(name("x-signature")))
        );
    }

    #[test]
    fn malformed_headers_are_malformed_signature() {
        let scheme = sha1_hex(vec![Secret::from("s")]);
        for bad in ["", "sha1", "sha256=abcd", "sha1=xyz", "abcd"] {
            let headers = signed_with(&scheme, b"{}", "x-signature", Some(bad));
            assert_eq!(
                verify_at(&scheme, &headers, b"{}", NOW),
                Err(Refusal::MalformedSignature(name("x-signature"))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prefix_is_case_insensitive() {
        let scheme = sha1_hex(vec![Secret::from("s")]);
        let signed = scheme
            .sign(b"{}", &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        let upper = signed["x-signature"]
            .to_str()
            .unwrap()
            .replace("sha1=", "SHA1=");
        let headers = signed_with(&scheme, b"{}", "x-signature", Some(&upper));
        assert_eq!(verify_at(&scheme, &headers, b"{}", NOW), Ok(()));
    }

    #[test]
    fn algorithm_is_part_of_the_check() {
        let sha1 = sha1_hex(vec![Secret::from("s")]);
        let sha256 = GenericHmac::new(
            vec![Secret::from("s")],
            HeaderName::from_static("x-signature"),
            Algorithm::Sha256,
            Encoding::Hex,
            "sha1=".into(),
        );
        assert_eq!(
            testutil::deliver(&sha256, b"{}", NOW, &sha1, b"{}", NOW),
            Err(Refusal::BadSignature)
        );
    }
}
