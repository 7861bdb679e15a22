//! Webhooks: one endpoint per owner, events `image.ready` and
//! `image.failed`, signed per the Standard Webhooks spec.
//!
//! Events are never sent from the code that settles an image: a trigger
//! (migration 0005) writes an outbox row in the very UPDATE that marks the
//! row `ready` or `failed`, so the resize pays one indexed insert and an
//! event cannot be lost between the two. The cron delivers due rows (every
//! minute, when `wake` says there may be any), and a receiver that is down or answers non-2xx gets the same
//! event (same `webhook-id`) again after `RETRY_AFTER_SECS`; once that
//! schedule is used up the row is marked given up and kept for operators.
//! Delivery is at least once: receivers dedupe on `webhook-id`.

use std::time::Duration;

use base64::Engine;
use pixport_aws::dataapi::{ExecuteStatementOutput, SqlParameter};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clock;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::transport;

/// Wait after the n-th failed attempt (Standard Webhooks' suggested
/// schedule, coarsened to the one-minute cron): 9 attempts over ~28 h.
pub const RETRY_AFTER_SECS: [u64; 8] = [60, 300, 1800, 7200, 18_000, 36_000, 36_000, 36_000];
/// Rows sent per cron run, oldest first.
const BATCH: i64 = 50;
const SECRET_PREFIX: &str = "whsec_";
const MAX_URL: usize = 2000;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How long to wait after `attempts` failed attempts; `None`: give up.
pub fn retry_after(attempts: u32) -> Option<u64> {
    RETRY_AFTER_SECS
        .get(attempts.checked_sub(1)? as usize)
        .copied()
}

/// A new signing secret: `whsec_` + base64 of 24 random bytes.
pub fn new_secret(random: [u8; 24]) -> String {
    format!("{SECRET_PREFIX}{}", B64.encode(random))
}

/// The `webhook-signature` header: `v1,` + base64 HMAC-SHA256 over
/// `id.timestamp.body` keyed by the secret's decoded bytes.
pub fn sign(secret: &str, msg_id: &str, timestamp: u64, body: &[u8]) -> Option<String> {
    let key = B64.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut msg = format!("{msg_id}.{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    Some(format!("v1,{}", B64.encode(hmac_sha256(&key, &msg))))
}

/// RFC 2104 over SHA-256 (the workspace's sha2; a few lines, no new crate).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| block.map(|k| k ^ b);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// An endpoint must be an absolute http(s) URL.
pub fn check_url(url: &str) -> ApiResult<()> {
    let bad = || ApiError::invalid_field("url", "an absolute http or https URL");
    if url.len() > MAX_URL {
        return Err(ApiError::invalid_field("url", "at most 2000 characters"));
    }
    let parsed = worker::Url::parse(url).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad());
    }
    Ok(())
}

/// The event body, as sent and signed.
pub fn event_body(event_type: &str, image_id: &str, occurred_at: &str) -> String {
    let status = event_type.strip_prefix("image.").unwrap_or(event_type);
    json!({
        "type": event_type,
        "timestamp": occurred_at,
        "data": {"id": image_id, "status": status},
    })
    .to_string()
}

#[derive(Deserialize)]
struct HookRow {
    url: String,
    secret: String,
}

#[derive(Deserialize)]
struct DueRow {
    id: i64,
    image_id: String,
    event_type: String,
    attempts: i64,
    url: String,
    secret: String,
    created_at: String,
}

/// What one delivery run did.
#[derive(Debug, Default)]
pub struct Delivered {
    pub sent: usize,
    pub retrying: usize,
    pub gave_up: usize,
}

/// The webhook table and outbox over the Data API.
pub struct Hooks<'a> {
    pub cfg: &'a Config,
}

impl Hooks<'_> {
    async fn exec(
        &self,
        sql: &str,
        params: Vec<SqlParameter>,
    ) -> ApiResult<ExecuteStatementOutput> {
        let mut st = self.cfg.database.execute_statement(sql).with_metadata();
        st.parameters = params;
        Ok(transport::run(&self.cfg.database, &st).await?)
    }

    /// The owner's endpoint and secret, if set.
    pub async fn get(&self, owner: &str) -> ApiResult<Option<Value>> {
        let out = self
            .exec(
                "SELECT url, secret FROM webhooks WHERE owner = :owner",
                vec![SqlParameter::new("owner", owner)],
            )
            .await?;
        Ok(out
            .rows::<HookRow>()?
            .pop()
            .map(|h| json!({"url": h.url, "secret": h.secret})))
    }

    /// Sets the owner's endpoint; the secret is made once and kept when the
    /// URL changes (receivers need not be reconfigured).
    pub async fn put(&self, owner: &str, url: &str, secret: &str) -> ApiResult<Value> {
        check_url(url)?;
        self.exec(
            "INSERT INTO webhooks (owner, url, secret) VALUES (:owner, :url, :secret) \
             ON DUPLICATE KEY UPDATE url = VALUES(url), updated_at = CURRENT_TIMESTAMP(3)",
            vec![
                SqlParameter::new("owner", owner),
                SqlParameter::new("url", url),
                SqlParameter::new("secret", secret),
            ],
        )
        .await?;
        self.get(owner).await?.ok_or(ApiError::NotFound)
    }

    /// Removes the endpoint and the events still waiting for it.
    pub async fn delete(&self, owner: &str) -> ApiResult<bool> {
        let out = self
            .exec(
                "DELETE FROM webhooks WHERE owner = :owner",
                vec![SqlParameter::new("owner", owner)],
            )
            .await?;
        self.exec(
            "DELETE FROM webhook_outbox WHERE owner = :owner AND delivered_at IS NULL",
            vec![SqlParameter::new("owner", owner)],
        )
        .await?;
        Ok(out.number_of_records_updated.unwrap_or(0) > 0)
    }

    /// When the earliest event still to be delivered is due (unix ms), if
    /// any: what the cron records so it need not ask the database until
    /// then (`wake`).
    pub async fn next_due_ms(&self) -> ApiResult<Option<u64>> {
        #[derive(Deserialize)]
        struct Due {
            due_ms: Option<i64>,
        }
        let out = self
            .exec(
                "SELECT CAST(UNIX_TIMESTAMP(MIN(o.next_attempt_at)) * 1000 AS SIGNED) AS due_ms \
                 FROM webhook_outbox o JOIN webhooks w ON w.owner = o.owner \
                 WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL",
                Vec::new(),
            )
            .await?;
        Ok(out
            .rows::<Due>()?
            .pop()
            .and_then(|d| d.due_ms)
            .map(|ms| u64::try_from(ms).unwrap_or(0)))
    }

    /// Sends every due event once; failures are rescheduled, not returned.
    pub async fn deliver_due(&self) -> ApiResult<Delivered> {
        let out = self
            .exec(
                "SELECT o.id, o.image_id, o.event_type, o.attempts, w.url, w.secret, \
                 DATE_FORMAT(o.created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS created_at \
                 FROM webhook_outbox o JOIN webhooks w ON w.owner = o.owner \
                 WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL \
                 AND o.next_attempt_at <= CURRENT_TIMESTAMP(3) ORDER BY o.id LIMIT :limit",
                vec![SqlParameter::new("limit", BATCH)],
            )
            .await?;
        let mut done = Delivered::default();
        for row in out.rows::<DueRow>()? {
            let attempts = u32::try_from(row.attempts)
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            let id = SqlParameter::new("id", row.id);
            match post(&row, self.cfg.webhook_timeout).await {
                Ok(()) => {
                    self.exec(
                        "UPDATE webhook_outbox SET delivered_at = CURRENT_TIMESTAMP(3), \
                         attempts = attempts + 1, last_error = NULL WHERE id = :id",
                        vec![id],
                    )
                    .await?;
                    done.sent += 1;
                }
                Err(why) => {
                    tracing::warn!(outbox = row.id, attempts, error = %why, "webhook delivery failed");
                    let why = SqlParameter::new("why", why.chars().take(500).collect::<String>());
                    match retry_after(attempts) {
                        Some(secs) => {
                            self.exec(
                                "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = :why, \
                                 next_attempt_at = CURRENT_TIMESTAMP(3) + INTERVAL :secs SECOND WHERE id = :id",
                                vec![id, why, SqlParameter::new("secs", secs as i64)],
                            )
                            .await?;
                            done.retrying += 1;
                        }
                        None => {
                            self.exec(
                                "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = :why, \
                                 gave_up_at = CURRENT_TIMESTAMP(3) WHERE id = :id",
                                vec![id, why],
                            )
                            .await?;
                            done.gave_up += 1;
                        }
                    }
                }
            }
        }
        Ok(done)
    }
}

/// One signed POST; any answer but 2xx, or none, is a failure to retry.
async fn post(row: &DueRow, timeout: Duration) -> Result<(), String> {
    use worker::{AbortSignal, Fetch, Headers, Method, Request, RequestInit};
    let msg_id = format!("msg_{}", row.id);
    let timestamp = clock::unix_ms(clock::now()) / 1000;
    let body = event_body(&row.event_type, &row.image_id, &row.created_at);
    let signature = sign(&row.secret, &msg_id, timestamp, body.as_bytes())
        .ok_or_else(|| "the stored secret is not a whsec_ secret".to_string())?;
    let headers = Headers::new();
    for (k, v) in [
        ("content-type", "application/json"),
        ("user-agent", "pixport-webhooks"),
        ("webhook-id", msg_id.as_str()),
        ("webhook-timestamp", timestamp.to_string().as_str()),
        ("webhook-signature", signature.as_str()),
    ] {
        headers.set(k, v).map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let req = Request::new_with_init(&row.url, &init).map_err(|e| e.to_string())?;
    // The runtime's own timer aborts the fetch (`worker::Delay` cannot run
    // under nodejs_compat, whose setTimeout returns an object).
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    let signal = AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(ms));
    let resp = Fetch::Request(req)
        .send_with_signal(&signal)
        .await
        .map_err(|e| match signal.aborted() {
            true => format!("no answer within {ms} ms"),
            false => e.to_string(),
        })?;
    match resp.status_code() {
        200..=299 => Ok(()),
        code => Err(format!("the receiver answered {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks reference libraries' test suite.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, b""), None);
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_schedule_grows_and_ends() {
        assert_eq!(retry_after(0), None);
        assert_eq!(retry_after(1), Some(60));
        assert!(RETRY_AFTER_SECS.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(retry_after(RETRY_AFTER_SECS.len() as u32 + 1), None);
    }

    #[test]
    fn only_absolute_http_urls_are_endpoints() {
        assert!(check_url("https://example.org/hook").is_ok());
        assert!(check_url("http://127.0.0.1:8080/x").is_ok());
        for bad in ["ftp://x/y", "/relative", "not a url", "javascript:alert(1)"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(new_secret([7; 24]).starts_with("whsec_"));
        assert!(sign(&new_secret([7; 24]), "m", 1, b"x").is_some());
    }
}
