//! The alert worker of `scimitar serve`: evaluates rules and delivers due firings every poll
//! interval (`scimitar_app::alerts::Services::run_alerts`), posting through this module's
//! HTTP client. The application decides what to send, signs it and keeps the delivery state;
//! this only makes the POST, with a whole-request timeout, and reports the status.

use scimitar_app::alerts::{AlertSettings, WebhookPoster, WebhookRequest};
use scimitar_app::Services;
use std::future::Future;
use std::pin::Pin;

/// Posts webhooks with one pooled client. No redirects are followed: a receiver that moved
/// must be reconfigured, not silently followed to wherever it points.
pub struct HttpPoster {
    client: reqwest::Client,
}

impl HttpPoster {
    pub fn new() -> Result<HttpPoster, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("scimitar-alerts/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("cannot build the webhook client: {error}"))?;
        Ok(HttpPoster { client })
    }
}

impl WebhookPoster for HttpPoster {
    fn post<'a>(
        &'a self,
        request: WebhookRequest<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send + 'a>> {
        Box::pin(async move {
            let mut builder = self
                .client
                .post(request.url)
                .timeout(request.timeout)
                .body(request.body.to_string());
            for (name, value) in request.headers {
                builder = builder.header(name, value);
            }
            // The error's text names the URL, which for Slack is the secret: left out.
            let response = builder.send().await.map_err(|error| {
                if error.is_timeout() {
                    "the receiver did not answer in time".to_string()
                } else if error.is_connect() {
                    "the receiver could not be reached".to_string()
                } else {
                    "the request to the receiver failed".to_string()
                }
            })?;
            Ok(response.status().as_u16())
        })
    }
}

/// Runs the worker until the task is aborted.
pub async fn run(services: Services, settings: AlertSettings) {
    let poster = match HttpPoster::new() {
        Ok(poster) => poster,
        Err(error) => {
            tracing::error!(%error, "alerts are not delivered");
            return;
        }
    };
    let node = services.alert_node_id();
    services.run_alerts(node, settings, &poster).await;
}
