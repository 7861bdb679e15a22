//! The wake-up call to the edge worker after an image is settled
//! (`pixport_contract::wake::call`): the worker then delivers the image's
//! webhook event within seconds instead of at its next cron minute.
//!
//! Best effort by design: the row and its outbox event are committed
//! before the call, and the worker's cron delivers whatever a lost call
//! would have. So the call has a short timeout of its own, its failure is
//! logged, and it never fails or retries the image.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pixport_contract::wake::call;
use tracing::{info, warn};

/// Where and how to call (`PIXPORT_EDGE_WAKE_URL`, `PIXPORT_WAKE_SECRET`,
/// `PIXPORT_WAKE_TIMEOUT_MS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakeConfig {
    /// The worker's `https://<host>/internal/wake`.
    pub url: String,
    pub secret: String,
    pub timeout: Duration,
}

/// Calls the worker; built once per container.
pub struct Waker {
    pub client: reqwest::Client,
    pub config: WakeConfig,
}

/// The call's JSON body: what was settled, and the upload's request id so
/// the worker's log line joins the upload's path.
pub fn body(image_id: Option<&str>, status: &str, request_id: Option<&str>) -> String {
    serde_json::json!({"image_id": image_id, "status": status, "request_id": request_id})
        .to_string()
}

impl Waker {
    /// One signed POST within the timeout; failures are logged only.
    /// `image_id` is `None` when the redrive gave up on rows in bulk.
    pub async fn settled(&self, image_id: Option<&str>, status: &str, request_id: Option<&str>) {
        let body = body(image_id, status, request_id);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = call::signature(&self.config.secret, now, body.as_bytes());
        let sent = self
            .client
            .post(&self.config.url)
            .timeout(self.config.timeout)
            .header("content-type", "application/json")
            .header(call::TIMESTAMP_HEADER, now.to_string())
            .header(call::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                info!(
                    image_id,
                    status, "the worker was woken to deliver its event"
                );
            }
            Ok(r) => warn!(
                image_id,
                answer = r.status().as_u16(),
                "the wake-up call was refused; the worker's cron delivers the event"
            ),
            Err(e) => warn!(
                image_id,
                error = %e,
                "the wake-up call failed; the worker's cron delivers the event"
            ),
        }
    }
}
