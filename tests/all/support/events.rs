//! Events as the admin API shows them (`GET /events/{id}`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::{TestHost, eventually};

/// `GET /events/{id}` on the admin API; `None` for 404.
pub async fn event(client: &reqwest::Client, admin_url: &str, id: &str) -> Option<Value> {
    let response = client
        .get(format!("{admin_url}/events/{id}"))
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::NOT_FOUND => None,
        StatusCode::OK => Some(response.json().await.unwrap()),
        status => panic!(
            "GET /events/{id}: {status} {}",
            response.text().await.unwrap()
        ),
    }
}

/// Waits until event `id` has `status`, and returns it.
pub async fn wait_for(host: &TestHost, id: &str, status: &str) -> Value {
    let admin = host.admin_url("");
    eventually(
        Duration::from_secs(10),
        &format!("event {id} {status}"),
        || async {
            event(&host.client, &admin, id)
                .await
                .filter(|event| event["status"] == status)
        },
    )
    .await
}

/// The value of header `name` in `headers`, a list of `[name, value]` pairs
/// as the admin API shows a stored request's and the inspect guest a
/// delivery's.
pub fn json_header(headers: &Value, name: &str) -> Option<String> {
    headers
        .as_array()
        .unwrap()
        .iter()
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap().to_owned())
}
