//! A Scimitar source's change feed (`GET /api/2.0/sync/changes`), which `watch` long-polls
//! between runs: it answers as soon as the source's account has changed past the token the
//! caller names, or at the wait's end with the token unchanged.

use crate::scim::{HttpFailure, Secret};
use serde_json::Value;
use std::time::Duration;

/// The longest wait one poll asks for; the server caps it at the same.
pub const MAX_POLL: Duration = Duration::from_secs(60);

/// How much longer than the wait a poll may take before the client gives up on it.
const POLL_GRACE: Duration = Duration::from_secs(30);

/// The change feed of one Scimitar deployment, read with the source's token.
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    url: String,
    token: Secret,
    client: reqwest::Client,
}

impl ChangeFeed {
    /// The feed at `url` (see [`crate::config::changes_url_of`]).
    pub fn new(url: &str, token: Secret) -> ChangeFeed {
        let client = reqwest::Client::builder()
            .timeout(MAX_POLL + POLL_GRACE)
            .build()
            .unwrap_or_default();
        ChangeFeed {
            url: url.to_string(),
            token,
            client,
        }
    }

    /// The same feed, its HTTPS certificate checked against the CAs of `ca_file` alone (the
    /// source's own setting; see [`crate::scim::http_client`]).
    pub fn trusting_only(self, ca_file: &std::path::Path) -> Result<ChangeFeed, String> {
        self.with_tls(&crate::scim::TlsFiles {
            ca_file: Some(ca_file.to_path_buf()),
            ..Default::default()
        })
    }

    /// The same feed, reached with the source's TLS settings (its CAs and client certificate).
    pub fn with_tls(mut self, tls: &crate::scim::TlsFiles) -> Result<ChangeFeed, String> {
        self.client = crate::scim::http_client(MAX_POLL + POLL_GRACE, tls)?;
        Ok(self)
    }

    /// The source's change token now.
    pub async fn current(&self) -> Result<u64, HttpFailure> {
        self.wait(0, Duration::ZERO).await
    }

    /// Waits until the source's token is past `after`, or `timeout` (at most [`MAX_POLL`]),
    /// and returns the token then (unchanged at the timeout).
    pub async fn wait(&self, after: u64, timeout: Duration) -> Result<u64, HttpFailure> {
        let seconds = timeout.min(MAX_POLL).as_secs();
        let response = self
            .client
            .get(format!(
                "{}?after={after}&timeout_seconds={seconds}",
                self.url
            ))
            .bearer_auth(self.token.expose())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|error| HttpFailure {
                status: None,
                message: format!("the change feed {}: {error}", self.url),
            })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !(200..300).contains(&status) {
            let message = body["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string());
            return Err(HttpFailure {
                status: Some(status),
                message: format!("the change feed {}: {message}", self.url),
            });
        }
        body["change_token"]
            .as_str()
            .and_then(|token| token.parse::<u64>().ok())
            .ok_or_else(|| HttpFailure {
                status: Some(status),
                message: format!(
                    "the change feed {} answered no change token: {body}",
                    self.url
                ),
            })
    }
}
