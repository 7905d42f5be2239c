//! The deploy endpoints: `PUT /plugins/{name}`, `GET
//! /plugins/{name}/versions`, `POST /plugins/{name}/rollback`, `DELETE
//! /plugins/{name}`. Reading the request and shaping the answer only; what
//! a deploy does is [`crate::deploy`]'s.
//!
//! The body of a `PUT` is JSON, `{"component_base64": "...", "manifest":
//! "..."}` (`manifest` optional): the component in standard base64 with
//! padding, the manifest as TOML text. `multipart/form-data` is answered
//! 415 with that shape (no multipart parser is built in yet).

use base64::Engine as _;
use http::{Request, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::views::time;
use super::{Admin, Answer, Refusal};
use crate::deploy::{DeployError, VersionInfo};

/// A `PUT /plugins/{name}` JSON body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    component_base64: String,
    #[serde(default)]
    manifest: Option<String>,
}

impl Admin {
    /// `PUT /plugins/{name}`: validate, store, load here.
    pub(super) async fn deploy_put(
        &self,
        name: &str,
        request: Request<Incoming>,
    ) -> Result<Answer, Refusal> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !content_type.is_empty() && !content_type.starts_with("application/json") {
            return Err(Refusal::Unsupported(format!(
                "send the plugin as application/json: {{\"component_base64\": \"...\", \"manifest\": \"...\"}} (not {content_type})"
            )));
        }
        let limit = self.max_deploy_body;
        let too_large = || {
            Refusal::TooLarge(format!(
                "the deploy body is larger than {limit} bytes (raise --max-deploy-body)"
            ))
        };
        if let Some(length) = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && length > limit
        {
            return Err(too_large());
        }
        let body = http_body_util::Limited::new(request.into_body(), limit as usize)
            .collect()
            .await
            .map_err(|err| {
                if err.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    Refusal::BadRequest(format!("the body could not be read: {err}"))
                }
            })?
            .to_bytes();
        let body: DeployBody = serde_json::from_slice(&body).map_err(|err| {
            Refusal::BadRequest(format!(
                "the body must be JSON {{\"component_base64\": \"...\", \"manifest\": \"...\"}}: {err}"
            ))
        })?;
        let wasm = base64::engine::general_purpose::STANDARD
            .decode(body.component_base64.as_bytes())
            .map_err(|err| {
                Refusal::BadRequest(format!("component_base64 is not valid base64: {err}"))
            })?;
        drop(body.component_base64);
        let deployed = self
            .deploy
            .publish(name, wasm, body.manifest)
            .await
            .map_err(refusal)?;
        let mut answer = version_json(&deployed.info);
        answer["new"] = deployed.new.into();
        answer["serving"] = deployed.serving.into();
        Ok(match deployed.new {
            true => Answer::Created(answer),
            false => Answer::Json(answer),
        })
    }

    /// `GET /plugins/{name}/versions`.
    pub(super) async fn versions(&self, name: &str) -> Result<Value, Refusal> {
        let versions = self.deploy.versions(name).await.map_err(refusal)?;
        if versions.is_empty() {
            return Err(Refusal::NotFound(format!(
                "plugin {name} has no deployed versions"
            )));
        }
        Ok(json!({
            "name": name,
            "versions": versions.iter().map(version_json).collect::<Vec<_>>(),
        }))
    }

    /// `POST /plugins/{name}/rollback[?to=V]`: the version live now.
    pub(super) async fn rollback(&self, name: &str, to: Option<i64>) -> Result<Value, Refusal> {
        let info = self.deploy.rollback(name, to).await.map_err(refusal)?;
        Ok(version_json(&info))
    }

    /// `DELETE /plugins/{name}`.
    pub(super) async fn undeploy(&self, name: &str) -> Result<Value, Refusal> {
        self.deploy.undeploy(name).await.map_err(refusal)?;
        Ok(json!({ "name": name, "undeployed": true }))
    }
}

/// One version as the API shows it: `deployed_at` in RFC 3339.
fn version_json(info: &VersionInfo) -> Value {
    json!({
        "name": info.name,
        "version": info.version,
        "sha256": info.sha256,
        "size": info.size,
        "deployed_at": time(info.deployed_at),
        "deployed_by": info.deployed_by,
        "live": info.live,
    })
}

/// The one place a deploy refusal becomes a status.
fn refusal(err: DeployError) -> Refusal {
    match err {
        DeployError::BadName(why) => Refusal::BadRequest(why),
        DeployError::FolderPlugin(why) | DeployError::NothingOlder(why) => Refusal::Conflict(why),
        DeployError::NotFound(why) => Refusal::NotFound(why),
        DeployError::Broken(error) => {
            let file = error.file.display().to_string();
            Refusal::Unprocessable(json!({
                "error": format!("the plugin would not load, nothing was deployed: {file}: {}", error.reason),
                "file": file,
                "reason": error.reason,
            }))
        }
        DeployError::Store(err) => Refusal::Store(format!("{err:#}")),
    }
}
