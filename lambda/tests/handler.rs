//! Handler rules with in-memory fakes: no AWS, no wasmtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::s3::S3Event;
use bytes::Bytes;
use pixport_contract::{Failure, OutputFormat, SourceFormat, Status};
use pixport_lambda::error::{Error, Result};
use pixport_lambda::handler::{Handler, Outcome};
use pixport_lambda::ports::{
    CACHE_CONTROL, Due, ImageRows, ObjectStore, Queued, Ready, ResizeClaim, ResizeClaimRules,
    Resizer,
};
use pixport_lambda::retry::RetryPolicy;
use pixport_lambda::wasi::{ResizeOutput, parse_output};

#[derive(Default)]
struct Objects {
    map: Mutex<HashMap<String, (Bytes, String, String)>>,
    gets: AtomicUsize,
    fail_next_get: Mutex<bool>,
    /// Every GET fails while set (an outage).
    down: Mutex<bool>,
}

impl ObjectStore for Objects {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        if std::mem::take(&mut *self.fail_next_get.lock().unwrap()) || *self.down.lock().unwrap() {
            return Err(Error::Transient("S3 503".into()));
        }
        Ok(self.map.lock().unwrap().get(key).map(|v| v.0.clone()))
    }
    async fn put(&self, key: &str, body: Bytes, ct: &str, cc: &str) -> Result<()> {
        self.map
            .lock()
            .unwrap()
            .insert(key.into(), (body, ct.into(), cc.into()));
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.map.lock().unwrap().remove(key);
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let map = self.map.lock().unwrap();
        Ok(map
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

#[derive(Debug, Clone)]
struct Row {
    status: Status,
    attempts: u32,
    restarts: u32,
    seq: Option<String>,
    ready: Option<Ready>,
    reason: Option<String>,
    next_at: Option<Instant>,
    last_error: Option<String>,
    /// `reprocess_at`: queued for a reprocess, with this token.
    queued_at: Option<String>,
    reprocess_claimed_until: Option<Instant>,
}

impl Row {
    /// A row in `status` that no attempt has touched yet.
    fn new(status: Status) -> Self {
        Self {
            status,
            attempts: 0,
            restarts: 0,
            seq: None,
            ready: None,
            reason: None,
            next_at: None,
            last_error: None,
            queued_at: None,
            reprocess_claimed_until: None,
        }
    }
}

/// The same guards as the SQL in `aws.rs`, over a map.
type Rows = Arc<Mutex<HashMap<String, Row>>>;

#[derive(Default)]
struct Table {
    rows: Rows,
    /// `mark_ready` fails while set (the Data API went down mid-attempt).
    ready_down: Mutex<bool>,
}

impl ImageRows for Table {
    async fn claim_resize(
        &self,
        id: &str,
        seq: &str,
        rules: &ResizeClaimRules,
    ) -> Result<ResizeClaim> {
        let mut rows = self.rows.lock().unwrap();
        let Some(r) = rows.get_mut(id) else {
            return Ok(ResizeClaim::Missing);
        };
        let not_older = r.seq.as_deref().is_none_or(|s| s <= seq);
        let newer = r.seq.as_deref().is_some_and(|s| s < seq);
        let processable = Status::PROCESSABLE.contains(&r.status);
        let due = !rules.due_only
            || (r.status == Status::Pending && r.next_at.is_none_or(|t| t <= Instant::now()));
        if due
            && ((processable && r.attempts < rules.max_attempts && not_older)
                || (r.status == Status::Failed && newer && r.restarts < rules.max_restarts))
        {
            r.attempts = if r.status == Status::Failed && newer {
                r.restarts += 1;
                1
            } else {
                r.attempts + 1
            };
            r.seq = Some(seq.into());
            r.next_at = Some(Instant::now() + rules.lease);
            Ok(ResizeClaim::Claimed {
                attempts: r.attempts,
                uploading: r.status == Status::Uploading,
            })
        } else {
            Ok(ResizeClaim::Skip {
                status: r.status,
                attempts: r.attempts,
            })
        }
    }
    async fn mark_ready(&self, id: &str, seq: &str, ready: &Ready) -> Result<bool> {
        if *self.ready_down.lock().unwrap() {
            return Err(Error::Transient("Data API 503".into()));
        }
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(id) {
            Some(r) if r.seq.as_deref() == Some(seq) && Status::PROCESSABLE.contains(&r.status) => {
                r.status = Status::Ready;
                r.ready = Some(ready.clone());
                r.reason = None;
                r.next_at = None;
                r.last_error = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn mark_failed(&self, id: &str, seq: &str, reason: &str) -> Result<bool> {
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(id) {
            Some(r) if r.seq.as_deref() == Some(seq) && Status::PROCESSABLE.contains(&r.status) => {
                r.status = Status::Failed;
                r.reason = Some(reason.into());
                r.attempts = r.attempts.max(1000);
                r.next_at = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn mark_retry(&self, id: &str, seq: &str, reason: &str, wait: Duration) -> Result<bool> {
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(id) {
            Some(r) if r.seq.as_deref() == Some(seq) && Status::PROCESSABLE.contains(&r.status) => {
                if r.status == Status::Failed {
                    r.status = Status::Pending;
                }
                r.last_error = Some(reason.into());
                r.next_at = Some(Instant::now() + wait);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn due(&self, _idle: Duration, limit: u32) -> Result<Vec<Due>> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .filter(|(_, r)| {
                r.status == Status::Pending && r.next_at.is_none_or(|t| t <= Instant::now())
            })
            .take(limit as usize)
            .map(|(id, r)| Due {
                id: id.clone(),
                original_key: format!("originals/{id}"),
                sequencer: r.seq.clone(),
                bytes: Some(4),
            })
            .collect())
    }
    async fn next_due(&self, _idle: Duration) -> Result<Option<u64>> {
        // The fake keeps no wall-clock times: any `pending` row is due now.
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .values()
            .any(|r| r.status == Status::Pending)
            .then_some(0))
    }
    async fn give_up_exhausted(&self, max: u32) -> Result<u64> {
        let mut n = 0;
        for r in self.rows.lock().unwrap().values_mut() {
            if r.status == Status::Pending
                && r.attempts >= max
                && r.next_at.is_some_and(|t| t <= Instant::now())
            {
                r.status = Status::Failed;
                r.reason = Some(format!(
                    "timeout: no attempt finished (gave up after {} attempts)",
                    r.attempts
                ));
                n += 1;
            }
        }
        Ok(n)
    }
    async fn forget(&self, id: &str, seq: &str) -> Result<bool> {
        let mut rows = self.rows.lock().unwrap();
        match rows.get(id) {
            Some(r) if r.seq.as_deref() == Some(seq) && Status::PROCESSABLE.contains(&r.status) => {
                rows.remove(id);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn is_live(&self, id: &str) -> Result<bool> {
        let rows = self.rows.lock().unwrap();
        Ok(rows.get(id).is_some_and(|r| r.status != Status::Deleting))
    }
    async fn queued(&self, limit: u32) -> Result<Vec<Queued>> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .filter(|(_, r)| {
                r.status == Status::Ready
                    && r.queued_at.is_some()
                    && r.reprocess_claimed_until
                        .is_none_or(|t| t <= Instant::now())
            })
            .take(limit as usize)
            .map(|(id, r)| Queued {
                id: id.clone(),
                original_key: format!("originals/{id}"),
                queued_at: r.queued_at.clone().unwrap_or_default(),
                variants: r
                    .ready
                    .as_ref()
                    .map(|x| x.variants.clone())
                    .unwrap_or_default(),
            })
            .collect())
    }
    async fn claim_reprocess(&self, id: &str, queued_at: &str, lease: Duration) -> Result<bool> {
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(id) {
            Some(r)
                if r.status == Status::Ready
                    && r.queued_at.as_deref() == Some(queued_at)
                    && r.reprocess_claimed_until
                        .is_none_or(|t| t <= Instant::now()) =>
            {
                r.reprocess_claimed_until = Some(Instant::now() + lease);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn finish_reprocess(&self, id: &str, queued_at: &str, ready: &Ready) -> Result<bool> {
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(id) {
            Some(r) if r.status == Status::Ready && r.queued_at.as_deref() == Some(queued_at) => {
                r.ready = Some(ready.clone());
                r.queued_at = None;
                r.reprocess_claimed_until = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn drop_reprocess(&self, id: &str, queued_at: &str) -> Result<bool> {
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(id) {
            Some(r) if r.queued_at.as_deref() == Some(queued_at) => {
                r.queued_at = None;
                r.reprocess_claimed_until = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// "Resizes" by emitting the framed output the real module writes.
#[derive(Default)]
struct FakeResizer {
    calls: AtomicUsize,
    /// Set: the row is deleted (as a DELETE or an abandoned upload would)
    /// while the module runs.
    delete_row_during: Mutex<Option<Rows>>,
    /// Set: the manifest states `text/html` as each variant's type.
    lying_type: Mutex<bool>,
    /// Set: one variant's bytes are HTML though its format says JPEG.
    html_variant: Mutex<bool>,
}

impl Resizer for FakeResizer {
    async fn resize(&self, input: Bytes) -> Result<ResizeOutput> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(rows) = self.delete_row_during.lock().unwrap().take() {
            rows.lock().unwrap().remove(ID);
        }
        if input.starts_with(b"BAD") {
            return Err(Error::resize(
                Failure::Corrupt,
                "decode: invalid JPEG marker",
            ));
        }
        let ct = match *self.lying_type.lock().unwrap() {
            true => "text/html",
            false => "image/jpeg",
        };
        let small: &[u8] = match *self.html_variant.lock().unwrap() {
            true => b"<html><script>alert(1)</script>",
            false => &V320[..],
        };
        resizer_output(&[
            (1920, 1440, "jpeg", ct, &V1920[..]),
            (640, 480, "jpeg", ct, &V640[..]),
            (320, 240, "jpeg", ct, small),
        ])
    }
}

/// Variant bodies as the resizer would frame them: each begins with JPEG's
/// magic number, which is all the host checks of a JPEG's bytes.
const V1920: [u8; 5] = [0xFF, 0xD8, 0xFF, 0xA1, 0xA1];
const V640: [u8; 4] = [0xFF, 0xD8, 0xFF, 0xB2];
const V320: [u8; 3] = [0xFF, 0xD8, 0xFF];

/// A variant as the module lists it: width, height, format, the type its
/// manifest states, its bytes.
type Listed<'a> = (u32, u32, &'a str, &'a str, &'a [u8]);

fn sha_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The module's stdout for `variants`, each with its true SHA-256, parsed
/// as the host parses it.
fn resizer_output(variants: &[Listed<'_>]) -> Result<ResizeOutput> {
    framed(variants, |_, body| sha_hex(body))
}

/// The same with the SHA-256 the manifest states for each variant chosen.
fn framed(variants: &[Listed<'_>], sha: impl Fn(usize, &[u8]) -> String) -> Result<ResizeOutput> {
    let mut offset = 0;
    let mut payload = Vec::new();
    let listed: Vec<serde_json::Value> = variants
        .iter()
        .enumerate()
        .map(|(i, (w, h, format, ct, body))| {
            let v = serde_json::json!({"width": w, "height": h, "format": format, "content_type": ct,
                "bytes": body.len(), "offset": offset, "sha256": sha(i, body)});
            offset += body.len();
            payload.extend_from_slice(body);
            v
        })
        .collect();
    let manifest = serde_json::json!({
        "version": 1,
        "source": {"format": "jpeg", "width": 4000, "height": 3000},
        "variants": listed,
        "skipped": [], "payload_bytes": payload.len(),
        "placeholder": {"thumbhash": "1QcSHQRnh493V4dIh4eXh1h4kJUI", "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj", "dominant_color": "#3b6ea5"}
    });
    let mut out = serde_json::to_vec(&manifest).unwrap();
    out.push(b'\n');
    out.extend_from_slice(&payload);
    parse_output(Bytes::from(out), Duration::from_millis(7))
}

const ID: &str = "01JABCDEFGHJKMNPQRSTVWXYZ0";

fn event(key: &str, seq: &str) -> S3Event {
    serde_json::from_value(serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2025-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "1.2.3.4"},
        "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
               "bucket": {"name": "bkt", "ownerIdentity": {"principalId": "x"}, "arn": "arn:aws:s3:::bkt"},
               "object": {"key": key, "size": 3, "eTag": "e", "sequencer": seq}}
    }]}))
    .unwrap()
}

fn setup(original: &[u8], row: Option<Status>) -> Handler<Objects, Table, FakeResizer> {
    let h = Handler {
        objects: Objects::default(),
        rows: Table::default(),
        resizer: FakeResizer::default(),
        bucket: "bkt".into(),
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            lease: Duration::from_secs(3600),
            idle: Duration::from_millis(1),
            batch: 10,
            max_restarts: 1,
        },
        max_bytes: 1000,
        recipe: "w=1920,640,320;q=82;f=auto".into(),
        redrive_wanted: std::sync::atomic::AtomicBool::new(false),
        wake: None,
    };
    h.objects.map.lock().unwrap().insert(
        format!("originals/{ID}"),
        (
            Bytes::copy_from_slice(original),
            "image/jpeg".into(),
            String::new(),
        ),
    );
    if let Some(status) = row {
        h.rows
            .rows
            .lock()
            .unwrap()
            .insert(ID.into(), Row::new(status));
    }
    h
}

/// The bucket's keys but the scheduled work's signals (`state/`).
fn image_objects(h: &Handler<Objects, Table, FakeResizer>) -> Vec<String> {
    let map = h.objects.map.lock().unwrap();
    let mut keys: Vec<String> = map
        .keys()
        .filter(|k| !k.starts_with("state/"))
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn row(h: &Handler<Objects, Table, FakeResizer>) -> Row {
    h.rows.rows.lock().unwrap()[ID].clone()
}

#[tokio::test]
async fn makes_variants_and_marks_ready() {
    let h = setup(b"JPEG", Some(Status::Pending));
    let out = h
        .handle(&event(&format!("originals/{ID}"), "0055"))
        .await
        .unwrap();
    assert!(
        matches!(&out[..], [Outcome::Ready { variants: 3, .. }]),
        "{out:?}"
    );
    let objects = h.objects.map.lock().unwrap();
    let (body, ct, cc) = &objects[&format!("variants/{ID}/640.jpg")];
    assert_eq!(
        (&body[..], ct.as_str(), cc.as_str()),
        (&V640[..], OutputFormat::Jpeg.content_type(), CACHE_CONTROL)
    );
    assert!(
        objects.contains_key(&format!("variants/{ID}/1920.jpg"))
            && objects.contains_key(&format!("variants/{ID}/320.jpg"))
    );
    assert!(
        objects.contains_key(&format!("originals/{ID}")),
        "the original is kept"
    );
    drop(objects);
    let r = row(&h);
    assert_eq!((r.status, r.attempts), (Status::Ready, 1));
    let ready = r.ready.unwrap();
    assert_eq!(
        (ready.format, ready.width, ready.height),
        (SourceFormat::Jpeg, 4000, 3000)
    );
    assert_eq!(ready.variants[2].key, format!("variants/{ID}/320.jpg"));
    assert_eq!(ready.variants[0].bytes, V1920.len() as u64);
    let ph = ready.placeholder.expect("placeholders reach the row");
    assert_eq!(
        (ph.blurhash.as_str(), ph.dominant_color.as_str()),
        ("LEHV6nWB2yk8pyo0adR*.7kCMdnj", "#3b6ea5")
    );
}

#[tokio::test]
async fn image_deleted_while_resizing_leaves_no_variants() {
    let h = setup(b"JPEG", Some(Status::Pending));
    *h.resizer.delete_row_during.lock().unwrap() = Some(h.rows.rows.clone());
    let out = h
        .handle(&event(&format!("originals/{ID}"), "0055"))
        .await
        .unwrap();
    assert!(matches!(&out[..], [Outcome::Skipped { .. }]), "{out:?}");
    let objects = h.objects.map.lock().unwrap();
    assert!(
        !objects.keys().any(|k| k.starts_with("variants/")),
        "{:?}",
        objects.keys().collect::<Vec<_>>()
    );
    assert!(objects.contains_key(&format!("originals/{ID}")));
}

#[tokio::test]
async fn oversize_original_fails_without_a_download() {
    let h = setup(b"JPEG", Some(Status::Pending));
    let mut ev = event(&format!("originals/{ID}"), "0055");
    ev.records[0].s3.object.size = Some(5000);
    let out = h.handle(&ev).await.unwrap();
    assert!(matches!(&out[..], [Outcome::Failed { .. }]), "{out:?}");
    assert_eq!(h.objects.gets.load(Ordering::SeqCst), 0);
    assert_eq!(h.resizer.calls.load(Ordering::SeqCst), 0);
    assert_eq!(row(&h).status, Status::Failed);
}

#[tokio::test]
async fn replay_changes_nothing() {
    let h = setup(b"JPEG", Some(Status::Pending));
    let ev = event(&format!("originals/{ID}"), "0055");
    h.handle(&ev).await.unwrap();
    let before = row(&h);
    let out = h.handle(&ev).await.unwrap();
    assert!(matches!(&out[..], [Outcome::Skipped { .. }]), "{out:?}");
    assert_eq!(h.resizer.calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.objects.gets.load(Ordering::SeqCst), 1);
    assert_eq!(row(&h).attempts, before.attempts);
}

#[tokio::test]
async fn older_event_after_newer_is_ignored() {
    let h = setup(b"JPEG", Some(Status::Pending));
    h.handle(&event(&format!("originals/{ID}"), "0100"))
        .await
        .unwrap();
    let out = h
        .handle(&event(&format!("originals/{ID}"), "FF"))
        .await
        .unwrap();
    assert!(matches!(&out[..], [Outcome::Skipped { .. }]));
    assert_eq!(h.resizer.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn poison_image_fails_once_and_is_not_retried() {
    let h = setup(b"BAD!", Some(Status::Pending));
    let ev = event(&format!("originals/{ID}"), "0055");
    let out = h.handle(&ev).await.unwrap();
    assert!(
        matches!(&out[..], [Outcome::Failed { reason, .. }] if reason.starts_with("corrupt: ")),
        "{out:?}"
    );
    let r = row(&h);
    assert_eq!(r.status, Status::Failed);
    assert_eq!(
        r.reason.as_deref(),
        Some("corrupt: the image is corrupt or truncated")
    );
    // Redelivery of the same event: the same bytes would fail again.
    assert!(matches!(
        &h.handle(&ev).await.unwrap()[..],
        [Outcome::Skipped { .. }]
    ));
    assert_eq!(h.resizer.calls.load(Ordering::SeqCst), 1);
    assert!(
        h.objects
            .map
            .lock()
            .unwrap()
            .contains_key(&format!("originals/{ID}")),
        "the original is kept"
    );
    // A newer upload of a good image gets a fresh start.
    h.objects
        .map
        .lock()
        .unwrap()
        .get_mut(&format!("originals/{ID}"))
        .unwrap()
        .0 = Bytes::from_static(b"JPEG");
    assert!(matches!(
        &h.handle(&event(&format!("originals/{ID}"), "0056"))
            .await
            .unwrap()[..],
        [Outcome::Ready { .. }]
    ));
    assert_eq!(row(&h).attempts, 1);
}

#[tokio::test]
async fn newer_uploads_restart_a_failed_image_only_up_to_the_cap() {
    let h = setup(b"BAD", Some(Status::Pending));
    let key = format!("originals/{ID}");
    let failed = |seq: &str| {
        let ev = event(&key, seq);
        let h = &h;
        async move { h.handle(&ev).await.unwrap() }
    };
    assert!(matches!(
        &failed("0055").await[..],
        [Outcome::Failed { .. }]
    ));
    // max_restarts = 1: one newer upload gets a fresh start and fails again...
    assert!(matches!(
        &failed("0056").await[..],
        [Outcome::Failed { .. }]
    ));
    assert_eq!(row(&h).restarts, 1);
    // ...the next one is refused without running the resizer.
    assert!(matches!(
        &failed("0057").await[..],
        [Outcome::Skipped { .. }]
    ));
    assert_eq!(h.resizer.calls.load(Ordering::SeqCst), 2);
    assert_eq!(row(&h).status, Status::Failed);
}

#[tokio::test]
async fn transient_failure_keeps_the_row_pending_then_retries() {
    let h = setup(b"JPEG", Some(Status::Pending));
    *h.objects.fail_next_get.lock().unwrap() = true;
    let ev = event(&format!("originals/{ID}"), "0055");
    let err = h.handle(&ev).await.unwrap_err();
    assert!(err.is_transient());
    let r = row(&h);
    assert_eq!(r.status, Status::Pending, "clients are not told `failed`");
    assert_eq!(r.reason, None);
    assert_eq!(
        r.last_error.as_deref(),
        Some("transient: storage or the database stayed unavailable")
    );
    // Lambda's retry of the same event succeeds.
    assert!(matches!(
        &h.handle(&ev).await.unwrap()[..],
        [Outcome::Ready { .. }]
    ));
    let r = row(&h);
    assert_eq!((r.status, r.attempts), (Status::Ready, 2));
    assert_eq!((r.next_at, r.last_error), (None, None));
}

#[tokio::test]
async fn transient_failures_give_up_after_max_attempts() {
    let h = setup(b"JPEG", Some(Status::Pending));
    let ev = event(&format!("originals/{ID}"), "0055");
    for _ in 0..2 {
        *h.objects.fail_next_get.lock().unwrap() = true;
        assert!(h.handle(&ev).await.is_err());
        assert_eq!(row(&h).status, Status::Pending);
    }
    *h.objects.fail_next_get.lock().unwrap() = true;
    let out = h.handle(&ev).await.unwrap();
    assert!(
        matches!(&out[..], [Outcome::Failed { reason, .. }]
            if reason == "transient: storage or the database stayed unavailable (gave up after 3 attempts)"),
        "{out:?}"
    );
    assert!(matches!(
        &h.handle(&ev).await.unwrap()[..],
        [Outcome::Skipped { .. }]
    ));
    assert_eq!(row(&h).status, Status::Failed);
}

#[tokio::test]
async fn redrive_retries_due_rows_after_the_deliveries_ran_out() {
    let h = setup(b"JPEG", Some(Status::Pending));
    let ev = event(&format!("originals/{ID}"), "0055");
    *h.objects.down.lock().unwrap() = true;
    assert!(h.handle(&ev).await.is_err());
    // The outage outlasts the delivery; the redrive records, does not raise.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let run = h.redrive(None).await.unwrap();
    assert!(
        matches!(&run.outcomes[..], [Outcome::Retrying { attempts: 2, .. }]),
        "{run:?}"
    );
    assert_eq!(row(&h).status, Status::Pending);
    *h.objects.down.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let run = h.redrive(None).await.unwrap();
    assert!(
        matches!(&run.outcomes[..], [Outcome::Ready { .. }]),
        "{run:?}"
    );
    let r = row(&h);
    assert_eq!((r.status, r.attempts), (Status::Ready, 3));
    assert_eq!(
        r.seq.as_deref(),
        Some(&*pixport_lambda::event::pad_sequencer(Some("0055")))
    );
    // Nothing is due any more.
    assert!(h.redrive(None).await.unwrap().outcomes.is_empty());
}

#[tokio::test]
async fn redrive_leaves_rows_whose_attempt_holds_the_lease() {
    let h = setup(b"JPEG", Some(Status::Pending));
    h.rows.rows.lock().unwrap().get_mut(ID).unwrap().next_at =
        Some(Instant::now() + Duration::from_secs(60));
    let run = h.redrive(None).await.unwrap();
    assert!(run.outcomes.is_empty(), "{run:?}");
    assert_eq!(h.resizer.calls.load(Ordering::SeqCst), 0);
    // Its due time came, but its attempts ran out in attempts that never
    // finished (killed): given up, not re-run forever.
    {
        let mut rows = h.rows.rows.lock().unwrap();
        let r = rows.get_mut(ID).unwrap();
        r.next_at = Some(Instant::now());
        r.attempts = 3;
    }
    let run = h.redrive(None).await.unwrap();
    assert_eq!(run.given_up, 1);
    assert_eq!(row(&h).status, Status::Failed);
}

#[tokio::test]
async fn redrive_of_a_never_claimed_row_makes_it_ready() {
    let h = setup(b"JPEG", Some(Status::Pending));
    let run = h.redrive(None).await.unwrap();
    assert!(
        matches!(&run.outcomes[..], [Outcome::Ready { .. }]),
        "{run:?}"
    );
    // The S3 event arriving late changes nothing but the sequencer guard.
    let out = h
        .handle(&event(&format!("originals/{ID}"), "0055"))
        .await
        .unwrap();
    assert!(matches!(&out[..], [Outcome::Skipped { .. }]), "{out:?}");
    assert_eq!(h.resizer.calls.load(Ordering::SeqCst), 1);
}

/// The redrive reads the table only when a row may be due, so its
/// five-minute schedule does not keep an idle Aurora cluster awake; a
/// failed invocation (rows waiting for a retry) makes the next one look.
#[tokio::test]
async fn an_idle_redrive_leaves_the_table_alone_until_signalled() {
    let h = setup(b"JPEG", Some(Status::Pending));
    let first = h.redrive(None).await.unwrap();
    assert!(!first.skipped, "nothing recorded yet: it reads the table");
    assert!(matches!(&first.outcomes[..], [Outcome::Ready { .. }]));
    let idle = h.redrive(None).await.unwrap();
    assert!(idle.skipped && idle.outcomes.is_empty(), "{idle:?}");

    const OTHER: &str = "01JOTHERGHJKMNPQRSTVWXYZ00";
    h.rows
        .rows
        .lock()
        .unwrap()
        .insert(OTHER.into(), Row::new(Status::Pending));
    h.objects.map.lock().unwrap().insert(
        format!("originals/{OTHER}"),
        (
            Bytes::from_static(b"JPEG"),
            "image/jpeg".into(),
            String::new(),
        ),
    );
    *h.objects.down.lock().unwrap() = true;
    assert!(
        h.handle(&event(&format!("originals/{OTHER}"), "0055"))
            .await
            .is_err()
    );
    *h.objects.down.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let woken = h.redrive(None).await.unwrap();
    assert!(!woken.skipped);
    assert!(
        matches!(&woken.outcomes[..], [Outcome::Ready { id, .. }] if id == OTHER),
        "{woken:?}"
    );
    assert!(h.redrive(None).await.unwrap().skipped);
}

#[tokio::test]
async fn redrive_stops_at_its_deadline() {
    let h = setup(b"JPEG", Some(Status::Pending));
    let run = h.redrive(Some(std::time::SystemTime::now())).await.unwrap();
    assert_eq!((run.outcomes.len(), run.deferred), (0, 1));
}

#[tokio::test]
async fn missing_row_downloads_nothing_and_keeps_the_original() {
    let h = setup(b"JPEG", None);
    let out = h
        .handle(&event(&format!("originals/{ID}"), "0055"))
        .await
        .unwrap();
    assert!(matches!(&out[..], [Outcome::Skipped { why, .. }] if why.contains("no row")));
    assert_eq!(h.objects.gets.load(Ordering::SeqCst), 0);
    assert_eq!(
        image_objects(&h),
        [format!("originals/{ID}")],
        "no variants, original kept"
    );
}

/// The stray variants of the first faults-under-load run: an attempt wrote
/// them, the Data API went down before `mark_ready`, and the upload was
/// undone (or swept) meanwhile. The retry finds no row and removes them.
#[tokio::test]
async fn variants_an_attempt_could_not_record_go_once_the_row_is_gone() {
    let h = setup(b"JPEG", Some(Status::Uploading));
    *h.rows.ready_down.lock().unwrap() = true;
    let ev = event(&format!("originals/{ID}"), "0055");
    assert!(h.handle(&ev).await.is_err(), "the delivery fails: retried");
    let variants = |h: &Handler<Objects, Table, FakeResizer>| {
        let map = h.objects.map.lock().unwrap();
        map.keys().filter(|k| k.starts_with("variants/")).count()
    };
    assert_eq!(variants(&h), 3, "written before the row could be marked");
    *h.rows.ready_down.lock().unwrap() = false;
    h.rows.rows.lock().unwrap().remove(ID);
    // Another image's variants are not touched.
    h.objects.map.lock().unwrap().insert(
        "variants/01JOTHER0000000000000000000/320.jpg".into(),
        (Bytes::from_static(b"x"), "image/jpeg".into(), String::new()),
    );
    let out = h.handle(&ev).await.unwrap();
    assert!(
        matches!(&out[..], [Outcome::Skipped { why, .. }] if why.contains("3 stray variants removed")),
        "{out:?}"
    );
    let map = h.objects.map.lock().unwrap();
    assert!(
        !map.keys()
            .any(|k| k.starts_with(&format!("variants/{ID}/")))
    );
    assert!(map.contains_key("variants/01JOTHER0000000000000000000/320.jpg"));
}

#[tokio::test]
async fn keys_outside_originals_are_ignored() {
    let h = setup(b"JPEG", Some(Status::Pending));
    for key in [
        format!("variants/{ID}/1920.jpg"),
        format!("originals/{ID}/x"),
        "other".into(),
    ] {
        let out = h.handle(&event(&key, "0055")).await.unwrap();
        assert!(
            matches!(&out[..], [Outcome::Skipped { .. }]),
            "{key}: {out:?}"
        );
    }
    assert_eq!(row(&h).attempts, 0);
    assert_eq!(h.objects.gets.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn keys_are_form_url_decoded() {
    let h = setup(b"JPEG", None);
    let id = "01JABC_DEF";
    h.rows
        .rows
        .lock()
        .unwrap()
        .insert(id.into(), Row::new(Status::Pending));
    h.objects.map.lock().unwrap().insert(
        format!("originals/{id}"),
        (Bytes::from_static(b"JPEG"), String::new(), String::new()),
    );
    let out = h
        .handle(&event("originals/01JABC%5FDEF", "01"))
        .await
        .unwrap();
    assert!(
        matches!(&out[..], [Outcome::Ready { id: got, .. }] if got == id),
        "{out:?}"
    );
    // `+` decodes to a space, which no id contains: ignored, not looked up.
    let out = h
        .handle(&event("originals/01JABC+DEF", "02"))
        .await
        .unwrap();
    assert!(matches!(&out[..], [Outcome::Skipped { .. }]), "{out:?}");
}

/// A refused upload's row outlived its original (the edge's undo removed
/// the original, then could not remove the row): its resize finds no
/// original and leaves the row `uploading` for the sweep, rather than a
/// `failed` image the client was never given.
#[tokio::test]
async fn a_row_whose_original_is_gone_goes_too() {
    // Still uploading (the edge undid it and could not remove the row), or
    // already pending (the edge's finishing UPDATE landed but its reply was
    // lost, so the edge undid an upload the database had finished).
    for status in [Status::Uploading, Status::Pending] {
        let h = setup(b"JPEG", Some(status));
        h.objects.map.lock().unwrap().clear();
        h.objects.map.lock().unwrap().insert(
            format!("variants/{ID}/320.jpg"),
            (Bytes::from_static(b"x"), "image/jpeg".into(), String::new()),
        );
        let out = h
            .handle(&event(&format!("originals/{ID}"), "0055"))
            .await
            .unwrap();
        assert!(
            matches!(&out[..], [Outcome::Skipped { why, .. }] if why.contains("original gone (its row")),
            "{status}: {out:?}"
        );
        assert!(h.rows.rows.lock().unwrap().get(ID).is_none(), "{status}");
        assert!(image_objects(&h).is_empty(), "{status}");
    }
}

/// The module says what it wrote; the host believes none of it about types.
/// A manifest stating `text/html` for JPEG bytes stores `image/jpeg`.
#[tokio::test]
async fn the_stored_type_follows_the_format_not_the_manifests_text() {
    let out = resizer_output(&[(320, 240, "jpeg", "text/html", &V320[..])]).unwrap();
    assert_eq!(out.payloads[0], &V320[..]);
    let h = setup(b"JPEG", Some(Status::Pending));
    *h.resizer.lying_type.lock().unwrap() = true;
    h.handle(&event(&format!("originals/{ID}"), "0055"))
        .await
        .unwrap();
    let objects = h.objects.map.lock().unwrap();
    let (_, ct, _) = &objects[&format!("variants/{ID}/320.jpg")];
    assert_eq!(ct, OutputFormat::Jpeg.content_type());
}

/// Bytes that are not the format named, or do not hash to the stated
/// SHA-256, are refused before anything is stored.
#[test]
fn variants_are_checked_against_their_format_and_checksum() {
    let html: &[u8] = b"<!doctype html><script>alert(document.cookie)</script>";
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    let riff_webp: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 ";
    let avif: &[u8] = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf";
    for (format, body) in [
        ("jpeg", html),
        ("png", html),
        ("webp", html),
        ("avif", html),
        ("jpeg", png),
        ("png", &V320[..]),
        ("avif", riff_webp),
        ("webp", avif),
    ] {
        let e = resizer_output(&[(320, 240, format, "image/jpeg", body)]).unwrap_err();
        assert_eq!(e.failure(), Failure::Internal, "{format}");
    }
    for (format, body) in [
        ("jpeg", &V320[..]),
        ("png", png),
        ("webp", riff_webp),
        ("avif", avif),
    ] {
        assert!(
            resizer_output(&[(320, 240, format, "x", body)]).is_ok(),
            "{format}"
        );
    }
    // The right magic with a checksum of other bytes.
    let e = framed(&[(320, 240, "jpeg", "image/jpeg", &V320[..])], |_, _| {
        sha_hex(b"other")
    })
    .unwrap_err();
    assert_eq!(e.failure(), Failure::Internal);
    let e = framed(&[(320, 240, "jpeg", "image/jpeg", &V320[..])], |_, _| {
        "a".into()
    })
    .unwrap_err();
    assert_eq!(e.failure(), Failure::Internal);
    // Upper-case hex is the same checksum.
    assert!(
        framed(&[(320, 240, "jpeg", "image/jpeg", &V320[..])], |_, b| {
            sha_hex(b).to_uppercase()
        })
        .is_ok()
    );
}

/// A module whose output fails the checks fails the image for good and
/// stores no variant.
#[tokio::test]
async fn a_variant_that_is_not_its_format_stores_nothing() {
    let h = setup(b"JPEG", Some(Status::Pending));
    *h.resizer.html_variant.lock().unwrap() = true;
    let out = h
        .handle(&event(&format!("originals/{ID}"), "0055"))
        .await
        .unwrap();
    assert!(matches!(&out[..], [Outcome::Failed { .. }]), "{out:?}");
    assert_eq!(row(&h).status, Status::Failed);
    let objects = h.objects.map.lock().unwrap();
    assert!(
        !objects.keys().any(|k| k.starts_with("variants/")),
        "{:?}",
        objects.keys()
    );
}

/// A ready image (made by `setup`'s recipe) queued for a reprocess with
/// `token`, under a handler whose recipe has changed since.
async fn queued_ready(original: &[u8], token: &str) -> Handler<Objects, Table, FakeResizer> {
    let mut h = setup(original, Some(Status::Pending));
    let out = h.handle(&event(&format!("originals/{ID}"), "0055")).await;
    if original.starts_with(b"BAD") {
        // A ready row whose original the resizer now refuses.
        let mut rows = h.rows.rows.lock().unwrap();
        let r = rows.get_mut(ID).unwrap();
        r.status = Status::Ready;
        r.ready = Some(Ready {
            format: SourceFormat::Jpeg,
            width: 4000,
            height: 3000,
            variants: vec![],
            placeholder: None,
            recipe: "old".into(),
        });
    } else {
        assert!(matches!(&out.unwrap()[..], [Outcome::Ready { .. }]));
    }
    h.rows.rows.lock().unwrap().get_mut(ID).unwrap().queued_at = Some(token.into());
    h.recipe = "w=1920,640,320;q=70;f=auto".into();
    h
}

#[tokio::test]
async fn a_reprocess_makes_the_variants_anew_and_removes_the_old_ones() {
    let h = queued_ready(b"JPEG", "t1").await;
    let before = row(&h).ready.unwrap();
    assert_eq!(before.recipe, "w=1920,640,320;q=82;f=auto");
    let run = h.redrive(None).await.unwrap();
    assert!(
        matches!(&run.reprocessed[..], [Outcome::Ready { variants: 3, .. }]),
        "{run:?}"
    );
    let after = row(&h);
    let ready = after.ready.unwrap();
    assert_eq!(ready.recipe, "w=1920,640,320;q=70;f=auto");
    assert_eq!(after.status, Status::Ready);
    assert_eq!(after.queued_at, None, "off the queue");
    // New keys of their own; the old objects gone; the original kept.
    let keys = image_objects(&h);
    for v in &ready.variants {
        assert!(
            v.key.starts_with(&format!("variants/{ID}/")) && v.key.matches('/').count() == 3,
            "{}",
            v.key
        );
        assert!(keys.contains(&v.key));
    }
    for v in &before.variants {
        assert!(!keys.contains(&v.key), "{} is still there", v.key);
    }
    assert!(keys.contains(&format!("originals/{ID}")));
    assert_eq!(keys.len(), 1 + ready.variants.len(), "{keys:?}");
    // Nothing is left queued: the next run does nothing.
    assert!(h.redrive(None).await.unwrap().reprocessed.is_empty());
}

#[tokio::test]
async fn a_reprocess_that_cannot_run_keeps_the_variants_and_leaves_the_queue() {
    // The original gone.
    let h = queued_ready(b"JPEG", "t1").await;
    h.objects
        .map
        .lock()
        .unwrap()
        .remove(&format!("originals/{ID}"));
    let before = row(&h).ready.unwrap();
    let run = h.redrive(None).await.unwrap();
    assert!(
        matches!(&run.reprocessed[..], [Outcome::Skipped { .. }]),
        "{run:?}"
    );
    assert_eq!(row(&h).ready.unwrap(), before);
    assert_eq!(row(&h).queued_at, None);
    // The resizer refuses the original now.
    let h = queued_ready(b"BAD bytes", "t1").await;
    let run = h.redrive(None).await.unwrap();
    assert!(
        matches!(&run.reprocessed[..], [Outcome::Skipped { why, .. }] if why.starts_with("refused")),
        "{run:?}"
    );
    assert_eq!(row(&h).ready.unwrap().recipe, "old");
    assert_eq!(row(&h).queued_at, None);
    assert!(
        image_objects(&h)
            .iter()
            .all(|k| !k.starts_with("variants/"))
    );
}

#[tokio::test]
async fn a_reprocess_asked_again_while_it_ran_is_done_again_not_lost() {
    let h = queued_ready(b"JPEG", "t1").await;
    // A newer request lands while the module runs: this run's result is
    // not recorded, the row stays queued under the newer token.
    let rows = h.rows.rows.clone();
    rows.lock().unwrap().get_mut(ID).unwrap().queued_at = Some("t1".into());
    let before = row(&h).ready.unwrap();
    let claimed = h
        .rows
        .claim_reprocess(ID, "t1", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(claimed);
    // Another run cannot take it while the lease holds.
    assert!(
        !h.rows
            .claim_reprocess(ID, "t1", Duration::from_secs(60))
            .await
            .unwrap()
    );
    rows.lock().unwrap().get_mut(ID).unwrap().queued_at = Some("t2".into());
    let ready = Ready {
        recipe: "x".into(),
        ..before.clone()
    };
    assert!(
        !h.rows.finish_reprocess(ID, "t1", &ready).await.unwrap(),
        "t1's result is stale"
    );
    // The lease ends; the next run redoes it under t2.
    rows.lock()
        .unwrap()
        .get_mut(ID)
        .unwrap()
        .reprocess_claimed_until = None;
    let run = h.redrive(None).await.unwrap();
    assert!(
        matches!(&run.reprocessed[..], [Outcome::Ready { .. }]),
        "{run:?}"
    );
    assert_eq!(row(&h).queued_at, None);
}

#[tokio::test]
async fn only_ready_images_are_reprocessed() {
    let h = setup(b"JPEG", Some(Status::Failed));
    h.rows.rows.lock().unwrap().get_mut(ID).unwrap().queued_at = Some("t1".into());
    let run = h.redrive(None).await.unwrap();
    assert!(run.reprocessed.is_empty());
    assert_eq!(h.resizer.calls.load(Ordering::SeqCst), 0);
}
