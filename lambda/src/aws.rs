//! The real `ObjectStore`, `ImageRows` and `Resizer`: pixport-aws builds
//! and signs each request, reqwest (rustls on ring, no OpenSSL) sends it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::StatusCode;
use pixport_aws::dataapi::{Database, ExecuteStatement, ExecuteStatementOutput};
use pixport_aws::s3::{
    Bucket, DeleteObject, GetObject, ListObjectsV2, PutObject, PutObjectOptions,
};
use pixport_aws::{ChecksumAlgorithm, Operation, ResumeWait};
use pixport_contract::{Failure, Status};
use serde::Deserialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ports::{
    Due, ImageRows, ObjectStore, Queued, REQUEST_ID_METADATA, Ready, ResizeClaim, ResizeClaimRules,
    Resizer,
};
use crate::wasi::{ResizeOutput, RunLimits, WasiRunner};

/// One client per container: keeps TLS sessions and connections warm across
/// invocations.
pub fn http_client() -> Result<reqwest::Client> {
    // Ignored when already installed (a second client in tests).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
        .map_err(|e| Error::Config(format!("http client: {e}")))
}

/// Sends a signed request; network failures are transient by nature.
async fn send(
    client: &reqwest::Client,
    req: http::Request<Bytes>,
) -> Result<(StatusCode, http::HeaderMap, Bytes)> {
    let what = format!("{} {}", req.method(), req.uri().path());
    let req = reqwest::Request::try_from(req).map_err(|e| Error::Store(format!("{what}: {e}")))?;
    let resp = client
        .execute(req)
        .await
        .map_err(|e| Error::Transient(format!("{what}: {e}")))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Error::Transient(format!("{what}: reading body: {e}")))?;
    Ok((status, headers, body))
}

/// Signs `op` for `target` now and sends it; the raw answer, for the
/// caller to read with `O::parse`.
async fn send_op<O: Operation>(
    client: &reqwest::Client,
    target: &O::Target,
    op: &O,
) -> Result<(StatusCode, http::HeaderMap, Bytes)> {
    send(client, op.request(target, SystemTime::now())?).await
}

/// Runs `op` against `target`: signed now, sent, its answer read.
async fn run<O: Operation>(
    client: &reqwest::Client,
    target: &O::Target,
    op: &O,
) -> Result<O::Output> {
    let (status, headers, body) = send_op(client, target, op).await?;
    Ok(O::parse(status, &headers, &body)?)
}

pub struct S3Store {
    pub client: reqwest::Client,
    pub bucket: Bucket,
}

impl ObjectStore for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let (status, headers, body) =
            send_op(&self.client, &self.bucket, &GetObject { key }).await?;
        match GetObject::parse(status, &headers, &body) {
            Ok(_) => Ok(Some(body)),
            Err(pixport_aws::Error::S3(e)) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_original(&self, key: &str) -> Result<Option<(Bytes, Option<String>)>> {
        let (status, headers, body) =
            send_op(&self.client, &self.bucket, &GetObject { key }).await?;
        match GetObject::parse(status, &headers, &body) {
            Ok(_) => {
                let request_id = headers
                    .get(REQUEST_ID_METADATA)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Ok(Some((body, request_id)))
            }
            Err(pixport_aws::Error::S3(e)) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        cache_control: &str,
    ) -> Result<()> {
        let options = PutObjectOptions {
            content_type: Some(content_type.into()),
            cache_control: Some(cache_control.into()),
            checksum: Some(ChecksumAlgorithm::Crc32c),
        };
        let op = PutObject { key, body, options };
        run(&self.client, &self.bucket, &op).await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        run(&self.client, &self.bucket, &DeleteObject { key }).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let op = ListObjectsV2 {
                prefix: Some(prefix.to_string()),
                continuation_token: token,
                ..Default::default()
            };
            let out = run(&self.client, &self.bucket, &op).await?;
            keys.extend(out.objects.into_iter().map(|o| o.key));
            token = out.next_continuation_token.filter(|_| out.is_truncated);
            if token.is_none() {
                return Ok(keys);
            }
        }
    }
}

pub struct DataApiRows {
    pub client: reqwest::Client,
    pub database: Database,
}

/// How long a call waits for an auto-paused Aurora cluster to resume:
/// within the function's timeout (120 s in the template) with room for the
/// resize, and longer than a resume takes (~15 s), so an image uploaded to a
/// paused cluster is resized in this invocation rather than a retry minutes
/// later.
const RESUME_WAIT: ResumeWait = ResumeWait::BACKGROUND;

impl DataApiRows {
    /// Runs `stmt`; while the cluster is resuming (or the call is
    /// throttled) it is sent again with backoff, up to `RESUME_WAIT`.
    /// Nothing else is retried here: the row's schedule handles outages.
    async fn execute(&self, stmt: ExecuteStatement) -> Result<ExecuteStatementOutput> {
        let started = Instant::now();
        let mut refusals = 0;
        loop {
            let (status, headers, body) = send_op(&self.client, &self.database, &stmt).await?;
            match ExecuteStatement::parse(status, &headers, &body) {
                Err(e) if ResumeWait::applies(&e) => {
                    refusals += 1;
                    let Some(wait) = RESUME_WAIT.next_delay(refusals, started.elapsed()) else {
                        return Err(e.into());
                    };
                    tracing::info!(error = %e, wait_ms = wait.as_millis() as u64, "the database is resuming; waiting");
                    tokio::time::sleep(wait).await;
                }
                other => return Ok(other?),
            }
        }
    }

    async fn updated(&self, stmt: ExecuteStatement) -> Result<bool> {
        Ok(self
            .execute(stmt)
            .await?
            .number_of_records_updated
            .unwrap_or(0)
            > 0)
    }
}

#[derive(Deserialize)]
struct Row {
    status: Status,
    attempts: i64,
}

#[derive(Deserialize)]
struct QueuedRow {
    id: String,
    original_key: String,
    variants: Option<String>,
    queued_at: String,
}

#[derive(Deserialize)]
struct DueRow {
    id: String,
    original_key: String,
    event_sequencer: Option<String>,
    bytes: Option<u64>,
}

/// Durations go to SQL as microseconds (`INTERVAL :us MICROSECOND`), the
/// unit that keeps sub-second test schedules exact.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl ImageRows for DataApiRows {
    async fn claim_resize(
        &self,
        id: &str,
        sequencer: &str,
        rules: &ResizeClaimRules,
    ) -> Result<ResizeClaim> {
        // Processable: not finished, attempts left, and this event is not
        // older than the last one applied; or failed and this is a newer
        // upload, which starts a fresh attempt count (at most
        // `max_restarts` times per image). MySQL evaluates SET
        // left to right, so `attempts` still sees the old sequencer. The
        // lease keeps the redrive off the row while this attempt runs.
        let due = if rules.due_only {
            format!(
                " AND status = '{}' AND (next_attempt_at IS NULL OR next_attempt_at <= CURRENT_TIMESTAMP(3))",
                Status::Pending
            )
        } else {
            String::new()
        };
        let sql = format!(
            "UPDATE images SET \
               restarts = restarts + (status = '{failed}' AND event_sequencer < :seq), \
               attempts = CASE WHEN status = '{failed}' AND event_sequencer < :seq THEN 1 ELSE attempts + 1 END, \
               event_sequencer = :seq, \
               next_attempt_at = CURRENT_TIMESTAMP(3) + INTERVAL :lease MICROSECOND, \
               updated_at = CURRENT_TIMESTAMP(3) \
             WHERE id = :id AND ( \
               (status IN {processable} AND attempts < :max AND (event_sequencer IS NULL OR event_sequencer <= :seq)) \
               OR (status = '{failed}' AND event_sequencer < :seq AND restarts < :max_restarts)){due}",
            failed = Status::Failed,
            processable = Status::sql_list(&Status::PROCESSABLE),
        );
        let stmt = self
            .database
            .execute_statement(sql)
            .param("id", id)
            .param("seq", sequencer)
            .param("max", i64::from(rules.max_attempts))
            .param("max_restarts", i64::from(rules.max_restarts))
            .param("lease", micros(rules.lease));
        let claimed = self.updated(stmt).await?;
        let stmt = self
            .database
            .execute_statement("SELECT status, attempts FROM images WHERE id = :id")
            .param("id", id)
            .format_json();
        let rows: Vec<Row> = self.execute(stmt).await?.rows()?;
        Ok(match rows.into_iter().next() {
            None => ResizeClaim::Missing,
            Some(r) if claimed => ResizeClaim::Claimed {
                attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
                uploading: r.status == Status::Uploading,
            },
            Some(r) => ResizeClaim::Skip {
                status: r.status,
                attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            },
        })
    }

    async fn is_live(&self, id: &str) -> Result<bool> {
        let stmt = self
            .database
            .execute_statement("SELECT status, attempts FROM images WHERE id = :id")
            .param("id", id)
            .format_json();
        let rows: Vec<Row> = self.execute(stmt).await?.rows()?;
        Ok(rows.first().is_some_and(|r| r.status != Status::Deleting))
    }

    async fn mark_ready(&self, id: &str, sequencer: &str, ready: &Ready) -> Result<bool> {
        let variants = serde_json::to_string(&ready.variants)
            .map_err(|e| Error::Store(format!("variants json: {e}")))?;
        let ph = ready.placeholder.as_ref();
        let sql = format!(
            "UPDATE images SET status = '{ready}', variants = :variants, format = :format, \
               content_type = :content_type, width = :width, \
               height = :height, thumbhash = :thumbhash, blurhash = :blurhash, \
               dominant_color = :dominant_color, failure_reason = NULL, last_error = NULL, next_attempt_at = NULL, \
               recipe = :recipe, updated_at = CURRENT_TIMESTAMP(3) \
             WHERE id = :id AND event_sequencer = :seq AND status IN {processable}",
            ready = Status::Ready,
            processable = Status::sql_list(&Status::PROCESSABLE),
        );
        let stmt = self
            .database
            .execute_statement(sql)
            .param("id", id)
            .param("seq", sequencer)
            .param("variants", variants)
            .param("format", ready.format.as_str())
            // The type the bytes proved, not the one a direct upload declared.
            .param("content_type", ready.format.content_type())
            .param("width", i64::from(ready.width))
            .param("height", i64::from(ready.height))
            .param("thumbhash", ph.map(|p| p.thumbhash.as_str()))
            .param("blurhash", ph.map(|p| p.blurhash.as_str()))
            .param("dominant_color", ph.map(|p| p.dominant_color.as_str()))
            .param("recipe", ready.recipe.as_str());
        self.updated(stmt).await
    }

    async fn queued(&self, limit: u32) -> Result<Vec<Queued>> {
        let sql = format!(
            "SELECT id, original_key, variants, \
               DATE_FORMAT(reprocess_at, '%Y-%m-%d %H:%i:%s.%f') AS queued_at FROM images \
             WHERE reprocess_at IS NOT NULL AND status = '{ready}' \
               AND (reprocess_claimed_until IS NULL OR reprocess_claimed_until < CURRENT_TIMESTAMP(3)) \
             ORDER BY reprocess_at LIMIT :limit",
            ready = Status::Ready,
        );
        let stmt = self
            .database
            .execute_statement(sql)
            .param("limit", i64::from(limit))
            .format_json();
        let rows: Vec<QueuedRow> = self.execute(stmt).await?.rows()?;
        rows.into_iter()
            .map(|r| {
                let variants = match r.variants.as_deref() {
                    None | Some("") => Vec::new(),
                    Some(v) => serde_json::from_str(v)
                        .map_err(|e| Error::Store(format!("row {}: variants json: {e}", r.id)))?,
                };
                Ok(Queued {
                    id: r.id,
                    original_key: r.original_key,
                    queued_at: r.queued_at,
                    variants,
                })
            })
            .collect()
    }

    async fn claim_reprocess(&self, id: &str, queued_at: &str, lease: Duration) -> Result<bool> {
        let sql = format!(
            "UPDATE images SET reprocess_claimed_until = CURRENT_TIMESTAMP(3) + INTERVAL :lease MICROSECOND \
             WHERE id = :id AND status = '{ready}' AND reprocess_at = :queued_at \
               AND (reprocess_claimed_until IS NULL OR reprocess_claimed_until < CURRENT_TIMESTAMP(3))",
            ready = Status::Ready,
        );
        let stmt = self
            .database
            .execute_statement(sql)
            .param("id", id)
            .param("queued_at", queued_at)
            .param("lease", micros(lease));
        self.updated(stmt).await
    }

    async fn finish_reprocess(&self, id: &str, queued_at: &str, ready: &Ready) -> Result<bool> {
        let variants = serde_json::to_string(&ready.variants)
            .map_err(|e| Error::Store(format!("variants json: {e}")))?;
        let ph = ready.placeholder.as_ref();
        let sql = format!(
            "UPDATE images SET variants = :variants, width = :width, height = :height, \
               thumbhash = :thumbhash, blurhash = :blurhash, dominant_color = :dominant_color, \
               recipe = :recipe, reprocess_at = NULL, reprocess_claimed_until = NULL, \
               updated_at = CURRENT_TIMESTAMP(3) \
             WHERE id = :id AND status = '{ready}' AND reprocess_at = :queued_at",
            ready = Status::Ready,
        );
        let stmt = self
            .database
            .execute_statement(sql)
            .param("id", id)
            .param("queued_at", queued_at)
            .param("variants", variants)
            .param("width", i64::from(ready.width))
            .param("height", i64::from(ready.height))
            .param("thumbhash", ph.map(|p| p.thumbhash.as_str()))
            .param("blurhash", ph.map(|p| p.blurhash.as_str()))
            .param("dominant_color", ph.map(|p| p.dominant_color.as_str()))
            .param("recipe", ready.recipe.as_str());
        self.updated(stmt).await
    }

    async fn drop_reprocess(&self, id: &str, queued_at: &str) -> Result<bool> {
        let stmt = self
            .database
            .execute_statement(
                "UPDATE images SET reprocess_at = NULL, reprocess_claimed_until = NULL \
                 WHERE id = :id AND reprocess_at = :queued_at",
            )
            .param("id", id)
            .param("queued_at", queued_at);
        self.updated(stmt).await
    }

    async fn mark_failed(&self, id: &str, sequencer: &str, reason: &str) -> Result<bool> {
        let sql = format!(
            "UPDATE images SET status = '{failed}', failure_reason = :reason, \
               attempts = GREATEST(attempts, :max), next_attempt_at = NULL, \
               updated_at = CURRENT_TIMESTAMP(3) \
             WHERE id = :id AND event_sequencer = :seq AND status IN {processable}",
            failed = Status::Failed,
            processable = Status::sql_list(&Status::PROCESSABLE),
        );
        let stmt = self
            .database
            .execute_statement(sql)
            .param("id", id)
            .param("seq", sequencer)
            .param("reason", reason)
            .param("max", i64::from(MAX_ATTEMPTS_CEILING));
        self.updated(stmt).await
    }

    async fn forget(&self, id: &str, sequencer: &str) -> Result<bool> {
        let sql = format!(
            "DELETE FROM images WHERE id = :id AND event_sequencer = :seq AND status IN {processable}",
            processable = Status::sql_list(&Status::PROCESSABLE),
        );
        let stmt = self
            .database
            .execute_statement(sql)
            .param("id", id)
            .param("seq", sequencer);
        self.updated(stmt).await
    }

    async fn mark_retry(
        &self,
        id: &str,
        sequencer: &str,
        reason: &str,
        retry_in: Duration,
    ) -> Result<bool> {
        // A row an older version left `failed` for a passing error is
        // `pending` again while it is retried.
        let sql = format!(
            "UPDATE images SET last_error = :reason, \
               status = IF(status = '{failed}', '{pending}', status), failure_reason = NULL, \
               next_attempt_at = CURRENT_TIMESTAMP(3) + INTERVAL :wait MICROSECOND, \
               updated_at = CURRENT_TIMESTAMP(3) \
             WHERE id = :id AND event_sequencer = :seq AND status IN {processable}",
            failed = Status::Failed,
            pending = Status::Pending,
            processable = Status::sql_list(&Status::PROCESSABLE),
        );
        let stmt = self
            .database
            .execute_statement(sql)
            .param("id", id)
            .param("seq", sequencer)
            .param("reason", reason)
            .param("wait", micros(retry_in));
        self.updated(stmt).await
    }

    async fn due(&self, idle: Duration, limit: u32) -> Result<Vec<Due>> {
        let sql = format!(
            "SELECT id, original_key, event_sequencer, bytes FROM images \
             WHERE status = '{pending}' AND (next_attempt_at <= CURRENT_TIMESTAMP(3) \
               OR (next_attempt_at IS NULL AND updated_at <= CURRENT_TIMESTAMP(3) - INTERVAL :idle MICROSECOND)) \
             ORDER BY COALESCE(next_attempt_at, updated_at) LIMIT :limit",
            pending = Status::Pending,
        );
        let stmt = self
            .database
            .execute_statement(sql)
            .param("idle", micros(idle))
            .param("limit", i64::from(limit))
            .format_json();
        let rows: Vec<DueRow> = self.execute(stmt).await?.rows()?;
        Ok(rows
            .into_iter()
            .map(|r| Due {
                id: r.id,
                original_key: r.original_key,
                sequencer: r.event_sequencer,
                bytes: r.bytes,
            })
            .collect())
    }

    async fn next_due(&self, idle: Duration) -> Result<Option<u64>> {
        #[derive(Deserialize)]
        struct Next {
            due_ms: Option<i64>,
        }
        let sql = format!(
            "SELECT CAST(UNIX_TIMESTAMP(MIN(COALESCE(next_attempt_at, \
               updated_at + INTERVAL :idle MICROSECOND))) * 1000 AS SIGNED) AS due_ms \
             FROM images WHERE status = '{pending}'",
            pending = Status::Pending,
        );
        let stmt = self
            .database
            .execute_statement(sql)
            .param("idle", micros(idle))
            .format_json();
        let rows: Vec<Next> = self.execute(stmt).await?.rows()?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.due_ms)
            .map(|ms| u64::try_from(ms).unwrap_or(0)))
    }

    async fn give_up_exhausted(&self, max_attempts: u32) -> Result<u64> {
        let sql = format!(
            "UPDATE images SET status = '{failed}', \
               failure_reason = LEFT(CONCAT(COALESCE(last_error, 'timeout: no attempt finished'), \
                 ' (gave up after ', attempts, ' attempts)'), 500), \
               next_attempt_at = NULL, updated_at = CURRENT_TIMESTAMP(3) \
             WHERE status = '{pending}' AND attempts >= :max AND next_attempt_at <= CURRENT_TIMESTAMP(3)",
            failed = Status::Failed,
            pending = Status::Pending,
        );
        let stmt = self
            .database
            .execute_statement(sql)
            .param("max", i64::from(max_attempts));
        let n = self.execute(stmt).await?.number_of_records_updated;
        Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }
}

/// What a permanent failure sets `attempts` to: above any configured
/// maximum, so only a newer upload (which resets the count) retries it.
const MAX_ATTEMPTS_CEILING: u32 = 1000;

/// Runs the module on the blocking pool: it is CPU-bound, and wasmtime-wasi's
/// sync adapter blocks on its own futures, which must not happen on a
/// runtime worker thread.
pub struct WasiResizer {
    pub runner: Arc<WasiRunner>,
    pub args: Arc<Vec<String>>,
    pub limits: RunLimits,
}

impl WasiResizer {
    pub fn new(runner: WasiRunner, cfg: &Config) -> Self {
        let widths: Vec<String> = cfg.widths.iter().map(u32::to_string).collect();
        let mut args = vec![
            "--widths".into(),
            widths.join(","),
            "--quality".into(),
            cfg.quality.to_string(),
            "--formats".into(),
            cfg.formats.to_string(),
        ];
        // Every limit, not only the size: a direct upload's pixels and
        // dimensions were never checked by the edge.
        args.extend(cfg.limits.resizer_args());
        Self {
            runner: Arc::new(runner),
            args: Arc::new(args),
            limits: RunLimits {
                memory_bytes: cfg.memory_cap_bytes,
                time: cfg.time_cap,
            },
        }
    }
}

impl Resizer for WasiResizer {
    async fn resize(&self, input: Bytes) -> Result<ResizeOutput> {
        let (runner, args, limits) = (self.runner.clone(), self.args.clone(), self.limits.clone());
        tokio::task::spawn_blocking(move || runner.run(input, &args, &limits))
            .await
            .map_err(|e| Error::resize(Failure::Internal, format!("resizer task: {e}")))?
    }
}
