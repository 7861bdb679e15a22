//! Sends notifications to the local Lambda the way S3 does: an asynchronous
//! (`Event`) invoke, off the request path, retried while the target is down.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

#[derive(Debug)]
pub struct Delivery {
    pub url: String,
    pub configuration_id: String,
    pub key: String,
    pub body: Bytes,
}

/// Queue handle; one background task delivers in order, so events for a key
/// reach the function in the order S3 accepted the writes.
#[derive(Debug, Clone)]
pub struct Deliverer {
    tx: mpsc::UnboundedSender<Delivery>,
}

impl Deliverer {
    pub fn spawn(attempts: u32) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, attempts));
        Self { tx }
    }

    pub fn send(&self, d: Delivery) {
        if let Err(e) = self.tx.send(d) {
            tracing::error!(key = %e.0.key, "event queue closed; event dropped");
        }
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Delivery>, attempts: u32) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    while let Some(d) = rx.recv().await {
        let mut delay = Duration::from_millis(250);
        for attempt in 1..=attempts {
            match post(&client, &d).await {
                Ok(status) if status.is_success() => {
                    tracing::info!(key = %d.key, config = %d.configuration_id, url = %d.url, %status, "event delivered");
                    break;
                }
                Ok(status) if status.is_client_error() => {
                    // Lambda refused the invoke itself (unknown function, bad
                    // payload): retrying cannot help, as with S3.
                    tracing::error!(key = %d.key, url = %d.url, %status, "event refused by lambda; dropped");
                    break;
                }
                outcome => {
                    let why = match outcome {
                        Ok(status) => status.to_string(),
                        Err(e) => e,
                    };
                    if attempt == attempts {
                        tracing::error!(key = %d.key, url = %d.url, %why, attempts, "event undeliverable; dropped");
                    } else {
                        tracing::warn!(key = %d.key, url = %d.url, %why, attempt, "event delivery failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(4));
                    }
                }
            }
        }
    }
}

async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    d: &Delivery,
) -> Result<http::StatusCode, String> {
    let req = http::Request::post(&d.url)
        .header("content-type", "application/json")
        .header("x-amz-invocation-type", "Event")
        .body(Full::new(d.body.clone()))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok(resp.status())
}
