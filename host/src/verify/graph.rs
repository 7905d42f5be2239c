//! Microsoft Graph change notifications. Graph signs nothing; it proves
//! itself with the subscription's `clientState`, a secret it echoes in
//! every notification.
//!
//! - A `POST` with `?validationToken=T` (subscription creation) is answered
//!   200 `text/plain` with `T` decoded (handshake `graph-validation`).
//! - Otherwise the body is `{"value": [...]}` and every entry's
//!   `clientState` must equal the secret (constant time); an entry without
//!   one, or an empty `value`, is refused.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde::Deserialize;

use super::signing::unknown_handshake;
use super::token::SecretToken;
use super::{
    Handshake, Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, query_param,
};

pub(crate) const NAME: &str = "graph";
const VALIDATION: &str = "graph-validation";

#[derive(Debug)]
pub struct Graph {
    states: Vec<SecretToken>,
}

impl Graph {
    /// `secrets` are the `clientState` values given when subscribing.
    pub fn new(secrets: Vec<Secret>) -> Self {
        Graph {
            states: secrets.into_iter().map(SecretToken::new).collect(),
        }
    }
}

#[derive(Deserialize)]
struct Notifications {
    value: Vec<Notification>,
}

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "clientState")]
    client_state: Option<String>,
}

impl Scheme for Graph {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handshakes(&self) -> &'static [&'static str] {
        &[VALIDATION]
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        if input.method != Method::POST {
            return Err(Refusal::MethodNotAllowed);
        }
        if let Some(token) = query_param(input.uri, "validationToken") {
            return Ok(Verdict::Answer(Handshake::text(VALIDATION, token)));
        }
        let notifications: Notifications = serde_json::from_slice(input.body).map_err(|_| {
            Refusal::MalformedBody("not a Graph notification (`{\"value\": [...]}`)")
        })?;
        if notifications.value.is_empty() {
            return Err(Refusal::MalformedBody("`value` is empty"));
        }
        let all_match = notifications.value.iter().all(|n| {
            n.client_state
                .as_deref()
                .is_some_and(|state| self.states.iter().any(|s| s.matches(state.as_bytes())))
        });
        if all_match {
            Ok(Verdict::deliver())
        } else {
            Err(Refusal::BadSignature)
        }
    }

    /// Sends `body` as given (it must carry the `clientState`); handshake
    /// `graph-validation` adds `?validationToken=`.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match out.handshake {
            None => Signed::post(out, headers),
            Some(VALIDATION) => {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain"),
                );
                let target = format!(
                    "{}{}validationToken=Validation%3A+Testing+client+application+reachability+for+subscription+Request-Id%3A+{}",
                    out.uri,
                    if out.uri.query().is_some() { "&" } else { "?" },
                    out.now
                );
                let mut signed = Signed::post_body(out, headers, Bytes::new());
                signed.uri = target.parse().map_err(|_| SignError::InvalidHeaderValue)?;
                Ok(signed)
            }
            Some(other) => Err(unknown_handshake(other, self.handshakes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{NOW, verdict_at};
    use super::super::{Input, NoKeys};
    use super::*;
    use http::Uri;

    fn graph() -> Graph {
        Graph::new(vec![Secret::from("secretClientValue")])
    }

    fn post(scheme: &Graph, target: &str, body: &[u8]) -> Result<Verdict, Refusal> {
        let uri: Uri = target.parse().unwrap();
        scheme.verify(&Input {
            method: &Method::POST,
            headers: &HeaderMap::new(),
            body,
            uri: &uri,
            now: NOW,
            keys: &NoKeys,
        })
    }

    #[test]
    fn validation_token_is_answered_decoded_as_text() {
        // Graph's docs: "Validation: Testing client application reachability
        // for subscription Request-Id: <id>", URL-encoded in the query.
        let got = post(
            &graph(),
            "/hooks/graph?validationToken=Validation%3A+Testing+client+application+reachability+for+subscription+Request-Id%3A+b3a2c5f1",
            b"",
        );
        let Ok(Verdict::Answer(answer)) = got else {
            panic!("answered: {got:?}");
        };
        assert_eq!(
            (answer.kind, answer.status, answer.content_type),
            ("graph-validation", 200, "text/plain")
        );
        assert_eq!(
            answer.body,
            "Validation: Testing client application reachability for subscription Request-Id: b3a2c5f1"
        );
    }

    // The notification shape from Graph's "Receive change notifications"
    // docs page.
    const NOTIFICATION: &str = r##"{"value":[{"id":"lsgTZMr9KwAAA","subscriptionId":"{subscription_guid}","subscriptionExpirationDateTime":"2016-03-19T22:11:09.952Z","clientState":"secretClientValue","changeType":"created","resource":"users/{user_guid}@{tenant_guid}/messages/{long_id_string}","tenantId":"84bd8158-6d4d-4958-8b9f-9d6445542f95","resourceData":{"@odata.type":"#Microsoft.Graph.Message","@odata.id":"Users/{user_guid}@{tenant_guid}/Messages/{long_id_string}","@odata.etag":"W/\"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf\"","id":"{long_id_string}"}}]}"##;

    #[test]
    fn every_client_state_must_match() {
        let scheme = graph();
        assert_eq!(
            post(&scheme, "/hooks/graph", NOTIFICATION.as_bytes()),
            Ok(Verdict::deliver())
        );
        let wrong = NOTIFICATION.replace("secretClientValue", "guess");
        assert_eq!(
            post(&scheme, "/hooks/graph", wrong.as_bytes()),
            Err(Refusal::BadSignature)
        );
        let mixed = r#"{"value":[{"clientState":"secretClientValue"},{"clientState":"guess"}]}"#;
        assert_eq!(
            post(&scheme, "/hooks/graph", mixed.as_bytes()),
            Err(Refusal::BadSignature)
        );
        let missing = r#"{"value":[{"clientState":"secretClientValue"},{}]}"#;
        assert_eq!(
            post(&scheme, "/hooks/graph", missing.as_bytes()),
            Err(Refusal::BadSignature)
        );
        for bad in [&b"{\"value\":[]}"[..], b"not json", b"{}"] {
            assert!(matches!(
                post(&scheme, "/hooks/graph", bad),
                Err(Refusal::MalformedBody(_))
            ));
        }
        assert!(verdict_at(&scheme, &HeaderMap::new(), b"{}", NOW).is_err());
    }

    #[test]
    fn the_signed_validation_handshake_is_answered() {
        let scheme = graph();
        let uri: Uri = "http://127.0.0.1:1/hooks/graph".parse().unwrap();
        let request = scheme
            .sign_request(&Outgoing::new(b"", &uri, NOW).with_handshake(VALIDATION))
            .unwrap();
        assert!(matches!(
            post(&scheme, &request.uri.to_string(), &request.body),
            Ok(Verdict::Answer(_))
        ));
    }
}
