//! `WebhookStore` over the Data API: the `webhooks` table (one endpoint per
//! owner) and the `webhook_outbox` a trigger fills when an image settles
//! (migrations 0005, 0009, 0011).

use pixport_aws::dataapi::{ExecuteStatementOutput, SqlParameter};
use serde::Deserialize;

use super::Db;
use crate::domain::error::Result;
use crate::domain::ports::{
    Attempt, Delivery, DeliveryState, DueEvent, Endpoint, Requeue, WebhookStore,
};

#[derive(Deserialize)]
struct HookRow {
    url: String,
    secret: String,
}

#[derive(Deserialize)]
struct DueRow {
    id: i64,
    owner: String,
    event_id: Option<String>,
    image_id: String,
    event_type: String,
    attempts: i64,
    url: String,
    secret: String,
    created_at: String,
}

/// An outbox row as the delivery log shows it.
#[derive(Deserialize)]
struct LogRow {
    id: i64,
    event_id: Option<String>,
    event_type: String,
    image_id: String,
    attempts: i64,
    last_error: Option<String>,
    sending: i64,
    created_at: String,
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
    gave_up_at: Option<String>,
}

impl From<LogRow> for Delivery {
    fn from(r: LogRow) -> Self {
        let state = if r.delivered_at.is_some() {
            DeliveryState::Delivered
        } else if r.gave_up_at.is_some() {
            DeliveryState::GaveUp
        } else if r.sending != 0 {
            DeliveryState::Sending
        } else if r.attempts > 0 {
            DeliveryState::Retrying
        } else {
            DeliveryState::Queued
        };
        Delivery {
            outbox_id: r.id,
            event_id: r.event_id,
            event_type: r.event_type,
            image_id: r.image_id,
            state,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            last_error: r.last_error,
            created_at: r.created_at,
            next_attempt_at: r.next_attempt_at,
            delivered_at: r.delivered_at,
            gave_up_at: r.gave_up_at,
        }
    }
}

/// The delivery log's columns (`LogRow`), times as RFC 3339 UTC.
const LOG_COLUMNS: &str = "o.id, o.event_id, o.event_type, o.image_id, o.attempts, o.last_error, \
     CAST(o.claimed_until IS NOT NULL AND o.claimed_until > CURRENT_TIMESTAMP(3) AS SIGNED) AS sending, \
     DATE_FORMAT(o.created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS created_at, \
     CASE WHEN o.delivered_at IS NULL AND o.gave_up_at IS NULL \
       THEN DATE_FORMAT(o.next_attempt_at, '%Y-%m-%dT%H:%i:%s.%fZ') END AS next_attempt_at, \
     DATE_FORMAT(o.delivered_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS delivered_at, \
     DATE_FORMAT(o.gave_up_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS gave_up_at";

impl Db {
    async fn statement(
        &self,
        sql: &str,
        params: Vec<SqlParameter>,
    ) -> Result<ExecuteStatementOutput> {
        Ok(self.exec(sql, params, None).await?)
    }
}

impl WebhookStore for Db {
    async fn endpoint(&self, owner: &str) -> Result<Option<Endpoint>> {
        let out = self
            .statement(
                "SELECT url, secret FROM webhooks WHERE owner = :owner",
                vec![SqlParameter::new("owner", owner)],
            )
            .await?;
        Ok(out.rows::<HookRow>()?.pop().map(|h| Endpoint {
            url: h.url,
            secret: h.secret,
        }))
    }

    async fn set_endpoint(&self, owner: &str, url: &str, secret: &str) -> Result<()> {
        self.statement(
            "INSERT INTO webhooks (owner, url, secret) VALUES (:owner, :url, :secret) \
             ON DUPLICATE KEY UPDATE url = VALUES(url), updated_at = CURRENT_TIMESTAMP(3)",
            vec![
                SqlParameter::new("owner", owner),
                SqlParameter::new("url", url),
                SqlParameter::new("secret", secret),
            ],
        )
        .await?;
        Ok(())
    }

    async fn remove_endpoint(&self, owner: &str) -> Result<bool> {
        let out = self
            .statement(
                "DELETE FROM webhooks WHERE owner = :owner",
                vec![SqlParameter::new("owner", owner)],
            )
            .await?;
        self.statement(
            "DELETE FROM webhook_outbox WHERE owner = :owner AND delivered_at IS NULL",
            vec![SqlParameter::new("owner", owner)],
        )
        .await?;
        Ok(out.number_of_records_updated.unwrap_or(0) > 0)
    }

    async fn next_due_ms(&self) -> Result<Option<u64>> {
        #[derive(Deserialize)]
        struct Due {
            due_ms: Option<i64>,
        }
        let out = self
            .statement(
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

    /// The lease is taken in one conditional UPDATE: a row another run
    /// holds (an unexpired `claimed_until`) is not taken, whichever run's
    /// statement comes first; `ROW_NUMBER()` per owner spreads the batch
    /// round-robin across owners.
    async fn lease_due(
        &self,
        token: &str,
        limit: u32,
        per_owner: u32,
        lease_secs: u64,
    ) -> Result<Vec<DueEvent>> {
        self.statement(
            "UPDATE webhook_outbox o JOIN ( \
               SELECT id FROM ( \
                 SELECT o.id, ROW_NUMBER() OVER (PARTITION BY o.owner ORDER BY o.id) AS nth \
                 FROM webhook_outbox o JOIN webhooks w ON w.owner = o.owner \
                 WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL \
                 AND o.next_attempt_at <= CURRENT_TIMESTAMP(3) \
                 AND (o.claimed_until IS NULL OR o.claimed_until < CURRENT_TIMESTAMP(3)) \
               ) due WHERE due.nth <= :per_owner ORDER BY due.nth, due.id LIMIT :limit \
             ) pick ON pick.id = o.id \
             SET o.claim_token = :token, \
                 o.claimed_until = CURRENT_TIMESTAMP(3) + INTERVAL :lease SECOND \
             WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL \
             AND (o.claimed_until IS NULL OR o.claimed_until < CURRENT_TIMESTAMP(3))",
            vec![
                SqlParameter::new("per_owner", i64::from(per_owner)),
                SqlParameter::new("limit", i64::from(limit)),
                SqlParameter::new("token", token),
                SqlParameter::new("lease", i64::try_from(lease_secs).unwrap_or(i64::MAX)),
            ],
        )
        .await?;
        let out = self
            .statement(
                "SELECT o.id, o.owner, o.event_id, o.image_id, o.event_type, o.attempts, w.url, \
                 w.secret, DATE_FORMAT(o.created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS created_at \
                 FROM webhook_outbox o JOIN webhooks w ON w.owner = o.owner \
                 WHERE o.claim_token = :token ORDER BY o.id",
                vec![SqlParameter::new("token", token)],
            )
            .await?;
        Ok(out
            .rows::<DueRow>()?
            .into_iter()
            .map(|r| DueEvent {
                outbox_id: r.id,
                owner: r.owner,
                event_id: r.event_id,
                image_id: r.image_id,
                event_type: r.event_type,
                attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
                endpoint: Endpoint {
                    url: r.url,
                    secret: r.secret,
                },
                created_at: r.created_at,
            })
            .collect())
    }

    async fn give_event_id(&self, outbox_id: i64, candidate: &str) -> Result<Option<String>> {
        let out = self
            .statement(
                "UPDATE webhook_outbox SET event_id = :event_id WHERE id = :id AND event_id IS NULL",
                vec![
                    SqlParameter::new("event_id", candidate),
                    SqlParameter::new("id", outbox_id),
                ],
            )
            .await?;
        if out.number_of_records_updated == Some(1) {
            return Ok(Some(candidate.to_string()));
        }
        #[derive(Deserialize)]
        struct Given {
            event_id: Option<String>,
        }
        let out = self
            .statement(
                "SELECT event_id FROM webhook_outbox WHERE id = :id",
                vec![SqlParameter::new("id", outbox_id)],
            )
            .await?;
        Ok(out.rows::<Given>()?.pop().and_then(|g| g.event_id))
    }

    async fn record(&self, outbox_id: i64, token: &str, attempt: &Attempt) -> Result<()> {
        let id = SqlParameter::new("id", outbox_id);
        let token = SqlParameter::new("token", token);
        match attempt {
            Attempt::Delivered => {
                self.statement(
                    "UPDATE webhook_outbox SET delivered_at = CURRENT_TIMESTAMP(3), \
                     attempts = attempts + 1, last_error = NULL, claim_token = NULL, \
                     claimed_until = NULL WHERE id = :id AND claim_token = :token",
                    vec![id, token],
                )
                .await?;
            }
            Attempt::Retry { why, after_secs } => {
                self.statement(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = :why, \
                     next_attempt_at = CURRENT_TIMESTAMP(3) + INTERVAL :secs SECOND, \
                     claim_token = NULL, claimed_until = NULL \
                     WHERE id = :id AND claim_token = :token",
                    vec![
                        id,
                        token,
                        SqlParameter::new("why", why.as_str()),
                        SqlParameter::new("secs", i64::try_from(*after_secs).unwrap_or(i64::MAX)),
                    ],
                )
                .await?;
            }
            Attempt::GaveUp { why } => {
                self.statement(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = :why, \
                     gave_up_at = CURRENT_TIMESTAMP(3), claim_token = NULL, \
                     claimed_until = NULL WHERE id = :id AND claim_token = :token",
                    vec![id, token, SqlParameter::new("why", why.as_str())],
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn release(&self, token: &str) -> Result<()> {
        self.statement(
            "UPDATE webhook_outbox SET claim_token = NULL, claimed_until = NULL \
             WHERE claim_token = :token",
            vec![SqlParameter::new("token", token)],
        )
        .await?;
        Ok(())
    }

    async fn deliveries(
        &self,
        owner: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<Delivery>> {
        let out = self
            .statement(
                &format!(
                    "SELECT {LOG_COLUMNS} FROM webhook_outbox o \
                     WHERE o.owner = :owner AND o.id < :before ORDER BY o.id DESC LIMIT :limit"
                ),
                vec![
                    SqlParameter::new("owner", owner),
                    SqlParameter::new("before", before.unwrap_or(i64::MAX)),
                    SqlParameter::new("limit", i64::from(limit)),
                ],
            )
            .await?;
        Ok(out
            .rows::<LogRow>()?
            .into_iter()
            .map(Delivery::from)
            .collect())
    }

    /// One conditional UPDATE (not while a run holds the row), then the
    /// row as it stands: held by a run, or already settled again by the
    /// run that held it when the UPDATE came, it was not requeued.
    async fn requeue(&self, owner: &str, event_id: &str) -> Result<Requeue> {
        let params = || {
            vec![
                SqlParameter::new("owner", owner),
                SqlParameter::new("event_id", event_id),
            ]
        };
        self.statement(
            "UPDATE webhook_outbox o JOIN webhooks w ON w.owner = o.owner \
             SET o.delivered_at = NULL, o.gave_up_at = NULL, \
                 o.next_attempt_at = CURRENT_TIMESTAMP(3) \
             WHERE o.owner = :owner AND o.event_id = :event_id \
             AND (o.claimed_until IS NULL OR o.claimed_until < CURRENT_TIMESTAMP(3))",
            params(),
        )
        .await?;
        let out = self
            .statement(
                &format!(
                    "SELECT {LOG_COLUMNS} FROM webhook_outbox o JOIN webhooks w ON w.owner = o.owner \
                     WHERE o.owner = :owner AND o.event_id = :event_id"
                ),
                params(),
            )
            .await?;
        Ok(match out.rows::<LogRow>()?.pop().map(Delivery::from) {
            None => Requeue::NotFound,
            Some(d) => match d.state {
                DeliveryState::Queued | DeliveryState::Retrying => Requeue::Requeued(Box::new(d)),
                DeliveryState::Sending | DeliveryState::Delivered | DeliveryState::GaveUp => {
                    Requeue::Sending
                }
            },
        })
    }
}
