//! The invocation queue: what Lambda's frontend and async event queue do for
//! one function with one execution environment.
//!
//! Synchronous invokes wait for their outcome; `Event` invokes are acknowledged
//! at once and, when the function fails, retried on Lambda's async schedule
//! (by default two retries, about 1 and 2 minutes after the failure) before
//! being written to a dead-letter file.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use crate::ids;

/// How a finished invocation ended, as the runtime reported it.
#[derive(Debug, Clone)]
pub enum Outcome {
    Success(Bytes),
    /// Lambda's error document, `{"errorMessage", "errorType", ...}`.
    Error(Bytes),
}

#[derive(Debug)]
pub enum Kind {
    RequestResponse(oneshot::Sender<Outcome>),
    Event,
}

#[derive(Debug)]
pub struct Invocation {
    pub id: String,
    pub payload: Bytes,
    pub kind: Kind,
    pub attempt: u32,
    pub trace_id: String,
    /// Fired by the schedule rather than by a caller.
    pub scheduled: bool,
}

/// What `/_status` reports per invocation (tests assert on these).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub request_id: String,
    pub invocation_type: &'static str,
    pub status: &'static str,
    pub attempts: u32,
    pub payload: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    pub received_at: String,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub invoked: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub init_errors: u64,
    /// Scheduled (EventBridge-style) invocations fired.
    pub scheduled: u64,
}

#[derive(Debug)]
pub struct Settings {
    pub timeout: Duration,
    /// The wait before each retry of a failed `Event` invoke; its length is
    /// the number of retries (Lambda's `MaximumRetryAttempts`, 0 to 2).
    pub retry_delays: Vec<Duration>,
    pub dlq: PathBuf,
    pub keep_records: usize,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Invocation>,
    in_flight: HashMap<String, Invocation>,
    records: VecDeque<Record>,
    counts: Counts,
}

/// Shared handle; cheap to clone.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Mutex<Inner>>,
    ready: Arc<Notify>,
    /// Wakes the supervisor to recycle the environment after a timeout.
    pub reset: Arc<Notify>,
    pub settings: Arc<Settings>,
}

fn parse(b: &Bytes) -> Value {
    serde_json::from_slice(b)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into_owned()))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn error_doc(message: &str, error_type: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string())
}

impl Queue {
    pub fn new(settings: Settings) -> Self {
        Self {
            inner: Arc::default(),
            ready: Arc::default(),
            reset: Arc::default(),
            settings: Arc::new(settings),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Accepts a new invocation; returns its request id.
    pub fn submit(&self, payload: Bytes, kind: Kind) -> String {
        let id = ids::request_id();
        let epoch = time::OffsetDateTime::now_utc().unix_timestamp();
        let record = Record {
            request_id: id.clone(),
            invocation_type: match kind {
                Kind::RequestResponse(_) => "RequestResponse",
                Kind::Event => "Event",
            },
            status: "queued",
            attempts: 0,
            payload: parse(&payload),
            response: None,
            error: None,
            received_at: now_rfc3339(),
        };
        let inv = Invocation {
            id: id.clone(),
            payload,
            kind,
            attempt: 1,
            trace_id: ids::trace_id(epoch),
            scheduled: false,
        };
        {
            let mut g = self.lock();
            g.counts.invoked += 1;
            g.records.push_back(record);
            while g.records.len() > self.settings.keep_records {
                g.records.pop_front();
            }
            g.queue.push_back(inv);
        }
        self.ready.notify_one();
        id
    }

    fn set_record(g: &mut Inner, id: &str, f: impl FnOnce(&mut Record)) {
        if let Some(r) = g.records.iter_mut().rev().find(|r| r.request_id == id) {
            f(r);
        }
    }

    /// Next invocation for the runtime, waiting until there is one
    /// (`/runtime/invocation/next` is a long poll).
    pub async fn next(&self) -> (String, Bytes, String) {
        loop {
            let notified = self.ready.notified();
            if let Some(x) = self.try_next() {
                return x;
            }
            notified.await;
        }
    }

    pub fn try_next(&self) -> Option<(String, Bytes, String)> {
        let mut g = self.lock();
        let inv = g.queue.pop_front()?;
        let out = (inv.id.clone(), inv.payload.clone(), inv.trace_id.clone());
        let attempt = inv.attempt;
        Self::set_record(&mut g, &inv.id, |r| {
            r.status = "running";
            r.attempts = attempt;
        });
        let id = inv.id.clone();
        g.in_flight.insert(inv.id.clone(), inv);
        drop(g);
        self.arm_timeout(id, attempt);
        Some(out)
    }

    fn arm_timeout(&self, id: String, attempt: u32) {
        let q = self.clone();
        let timeout = self.settings.timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let still_running = q
                .lock()
                .in_flight
                .get(&id)
                .is_some_and(|i| i.attempt == attempt);
            if still_running {
                let msg = format!("Task timed out after {:.2} seconds", timeout.as_secs_f64());
                tracing::warn!(request_id = %id, "{msg}");
                q.complete(&id, Outcome::Error(error_doc(&msg, "Sandbox.Timedout")));
                q.reset.notify_one();
            }
        });
    }

    /// Records the runtime's verdict; false when `id` is not in flight.
    pub fn complete(&self, id: &str, outcome: Outcome) -> bool {
        let mut g = self.lock();
        let Some(mut inv) = g.in_flight.remove(id) else {
            return false;
        };
        let settings = &self.settings;
        match (&outcome, inv.kind) {
            (Outcome::Success(body), kind) => {
                g.counts.succeeded += 1;
                Self::set_record(&mut g, id, |r| {
                    r.status = "succeeded";
                    r.response = Some(parse(body));
                });
                if let Kind::RequestResponse(tx) = kind {
                    let _ = tx.send(outcome);
                }
            }
            (Outcome::Error(err), Kind::RequestResponse(tx)) => {
                g.counts.failed += 1;
                Self::set_record(&mut g, id, |r| {
                    r.status = "failed";
                    r.error = Some(parse(err));
                });
                let _ = tx.send(outcome);
            }
            (Outcome::Error(err), Kind::Event) => {
                g.counts.failed += 1;
                let retry_delay = usize::try_from(inv.attempt - 1)
                    .ok()
                    .and_then(|i| settings.retry_delays.get(i).copied());
                let final_attempt = retry_delay.is_none();
                Self::set_record(&mut g, id, |r| {
                    r.status = if final_attempt {
                        "dead-lettered"
                    } else {
                        "retrying"
                    };
                    r.error = Some(parse(err));
                });
                if final_attempt {
                    g.counts.dead_lettered += 1;
                    drop(g);
                    self.dead_letter(&inv.id, &inv.payload, err, inv.attempt);
                } else {
                    g.counts.retried += 1;
                    drop(g);
                    inv.attempt += 1;
                    inv.kind = Kind::Event;
                    let delay = retry_delay.unwrap_or_default();
                    tracing::info!(request_id = %inv.id, attempt = inv.attempt, delay_ms = delay.as_millis() as u64, "retrying async invocation");
                    let q = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        q.lock().queue.push_back(inv);
                        q.ready.notify_one();
                    });
                }
            }
        }
        true
    }

    /// Fails whatever the environment was running when it died, as Lambda
    /// does when the runtime process exits mid-invocation.
    pub fn fail_in_flight(&self, message: &str) {
        let ids: Vec<String> = self.lock().in_flight.keys().cloned().collect();
        for id in ids {
            self.complete(&id, Outcome::Error(error_doc(message, "Runtime.ExitError")));
        }
    }

    pub fn init_error(&self, body: &Bytes) {
        self.lock().counts.init_errors += 1;
        tracing::error!(error = %String::from_utf8_lossy(body), "runtime reported an init error");
    }

    fn dead_letter(&self, id: &str, payload: &Bytes, err: &Bytes, attempts: u32) {
        let line = serde_json::json!({
            "requestId": id,
            "attempts": attempts,
            "time": now_rfc3339(),
            "error": parse(err),
            "payload": parse(payload),
        });
        tracing::error!(request_id = %id, attempts, dlq = %self.settings.dlq.display(), "async invocation failed; dead-lettered");
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            if let Some(dir) = self.settings.dlq.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.settings.dlq)?;
            writeln!(f, "{line}")
        };
        if let Err(e) = write() {
            tracing::error!(error = %e, "could not write dead-letter file");
        }
    }

    /// Counts a scheduled invocation; false (and nothing queued) while the
    /// previous one still waits for the runtime, so a busy or absent runtime
    /// does not pile up schedules.
    pub fn submit_scheduled(&self, payload: Bytes) -> bool {
        let waiting = self.lock().queue.iter().any(|i| i.scheduled);
        if waiting {
            return false;
        }
        let id = self.submit(payload, Kind::Event);
        let mut g = self.lock();
        g.counts.scheduled += 1;
        if let Some(inv) = g.queue.iter_mut().find(|i| i.id == id) {
            inv.scheduled = true;
        }
        true
    }

    pub fn status(&self) -> (Counts, usize, usize, Vec<Record>) {
        let g = self.lock();
        (
            g.counts.clone(),
            g.queue.len(),
            g.in_flight.len(),
            g.records.iter().cloned().collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(dlq: PathBuf) -> Queue {
        Queue::new(Settings {
            timeout: Duration::from_secs(30),
            retry_delays: vec![Duration::from_millis(1), Duration::from_millis(2)],
            dlq,
            keep_records: 10,
        })
    }

    #[tokio::test]
    async fn sync_invoke_gets_the_response() {
        let q = queue(PathBuf::from("/nonexistent/dlq.jsonl"));
        let (tx, rx) = oneshot::channel();
        let id = q.submit(Bytes::from_static(b"{\"a\":1}"), Kind::RequestResponse(tx));
        let (got, payload, _) = q.next().await;
        assert_eq!(got, id);
        assert_eq!(&payload[..], b"{\"a\":1}");
        assert!(q.complete(&id, Outcome::Success(Bytes::from_static(b"\"ok\""))));
        assert!(matches!(rx.await, Ok(Outcome::Success(b)) if &b[..] == b"\"ok\""));
        assert!(
            !q.complete(&id, Outcome::Success(Bytes::new())),
            "second completion refused"
        );
    }

    #[tokio::test]
    async fn failing_event_is_retried_twice_then_dead_lettered() {
        let dir = std::env::temp_dir().join(format!("pixport-rt-test-{}", std::process::id()));
        let dlq = dir.join("dlq.jsonl");
        let _ = std::fs::remove_file(&dlq);
        let q = queue(dlq.clone());
        let id = q.submit(Bytes::from_static(b"{}"), Kind::Event);
        for attempt in 1..=3 {
            let (got, _, _) = q.next().await;
            assert_eq!(got, id, "attempt {attempt} keeps the request id");
            q.complete(&got, Outcome::Error(error_doc("boom", "Boom")));
        }
        let (counts, queued, in_flight, records) = q.status();
        assert_eq!(
            (counts.failed, counts.retried, counts.dead_lettered),
            (3, 2, 1)
        );
        assert_eq!((queued, in_flight), (0, 0));
        assert_eq!(records[0].status, "dead-lettered");
        assert_eq!(records[0].attempts, 3);
        let text = std::fs::read_to_string(&dlq).expect("dlq written");
        assert!(text.contains(&id));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_their_own_delays() {
        let q = Queue::new(Settings {
            timeout: Duration::from_secs(900),
            retry_delays: vec![Duration::from_secs(60), Duration::from_secs(120)],
            dlq: PathBuf::from("/nonexistent/dlq.jsonl"),
            keep_records: 10,
        });
        let id = q.submit(Bytes::from_static(b"{}"), Kind::Event);
        let mut waits = Vec::new();
        let mut failed_at = None;
        for _ in 0..3 {
            let (got, _, _) = q.next().await;
            assert_eq!(got, id);
            if let Some(t) = failed_at {
                waits.push(tokio::time::Instant::elapsed(&t).as_secs());
            }
            failed_at = Some(tokio::time::Instant::now());
            q.complete(&got, Outcome::Error(error_doc("down", "Transient")));
        }
        assert_eq!(waits, [60, 120], "Lambda's async schedule, in seconds");
        assert_eq!(q.status().0.dead_lettered, 1);
    }

    #[tokio::test]
    async fn a_waiting_schedule_is_not_doubled() {
        let q = queue(PathBuf::from("/nonexistent"));
        assert!(q.submit_scheduled(Bytes::from_static(b"{}")));
        assert!(!q.submit_scheduled(Bytes::from_static(b"{}")));
        let (id, _, _) = q.next().await;
        q.complete(&id, Outcome::Success(Bytes::new()));
        assert!(q.submit_scheduled(Bytes::from_static(b"{}")));
        assert_eq!(q.status().0.scheduled, 2);
    }

    #[tokio::test]
    async fn records_are_bounded() {
        let q = queue(PathBuf::from("/nonexistent"));
        for _ in 0..25 {
            q.submit(Bytes::from_static(b"{}"), Kind::Event);
        }
        assert_eq!(q.status().3.len(), 10);
    }
}
