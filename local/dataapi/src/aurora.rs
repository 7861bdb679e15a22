//! What Aurora Serverless v2 does behind the Data API besides running SQL:
//! auto-pause (a paused cluster refuses calls with
//! `DatabaseResumingException` while it resumes) and the statement timeout
//! (45 s, then `StatementTimeoutException`). Also a count of the calls
//! received, so a test can prove that some work made no Data API call.
//!
//! Auto-pause is off unless `PIXPORT_DATAAPI_AUTOPAUSE_IDLE_MS` is set, so
//! other tests never meet it; the statement timeout is always on, as in AWS.
//!
//! Local-only endpoints (no SigV4, loopback hosts only, like everything here):
//! `GET /__pixport/cluster` (state and counters) and
//! `POST /__pixport/cluster/pause` (pause now, as if the idle time had passed).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::error::ApiError;

/// AWS: a call that runs longer is cancelled (or, with
/// `continueAfterTimeout`, left running) and answered with a timeout.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(45);

/// Settings from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Idle time after which the cluster pauses; `None`: it never does.
    pub idle: Option<Duration>,
    /// How long a resume takes; every call meanwhile is refused.
    pub resume: Duration,
    pub statement_timeout: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let ms = |k: &str| -> Result<Option<Duration>, String> {
            match get(k).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(|n| Some(Duration::from_millis(n)))
                    .map_err(|_| format!("{k} must be a whole number of milliseconds")),
            }
        };
        let idle = ms("PIXPORT_DATAAPI_AUTOPAUSE_IDLE_MS")?.filter(|d| !d.is_zero());
        let resume = ms("PIXPORT_DATAAPI_RESUME_MS")?.unwrap_or(Duration::from_secs(15));
        let statement_timeout =
            ms("PIXPORT_DATAAPI_STATEMENT_TIMEOUT_MS")?.unwrap_or(STATEMENT_TIMEOUT);
        if statement_timeout.is_zero() {
            return Err("PIXPORT_DATAAPI_STATEMENT_TIMEOUT_MS must be > 0".into());
        }
        Ok(Self {
            idle,
            resume,
            statement_timeout,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Serving; `last` is when the last call started or ended.
    Awake { last: Instant },
    /// Paused by `POST /__pixport/cluster/pause`.
    Paused,
    /// Refusing calls until `until`.
    Resuming { until: Instant },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Calls running now: a cluster with a running statement never pauses.
    in_flight: u32,
}

/// The cluster's pause state and the counters.
pub struct Cluster {
    pub settings: Settings,
    instance_id: String,
    state: Mutex<State>,
    calls: AtomicU64,
    refused_resuming: AtomicU64,
    pauses: AtomicU64,
}

/// Marks a call as running; when dropped, the call has ended (which counts
/// as activity, so a long statement does not let the cluster pause).
pub struct Busy<'a>(&'a Cluster);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if let Phase::Awake { last } = &mut s.phase {
            *last = Instant::now();
        }
    }
}

impl Cluster {
    pub fn new(settings: Settings, cluster_arn: &str) -> Self {
        // `arn:aws:rds:<region>:<account>:cluster:<name>`: Aurora names the
        // writer instance in its message.
        let name = cluster_arn.rsplit(':').next().unwrap_or("cluster");
        Self {
            settings,
            instance_id: format!("{name}-instance-1"),
            state: Mutex::new(State {
                phase: Phase::Awake {
                    last: Instant::now(),
                },
                in_flight: 0,
            }),
            calls: AtomicU64::new(0),
            refused_resuming: AtomicU64::new(0),
            pauses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every request to an operation, whatever its outcome.
    pub fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Admits a call to the database, or refuses it as Aurora does while
    /// the cluster is paused or resuming. `open_transactions` keeps it from
    /// pausing (Aurora does not pause with a session open).
    pub fn enter(&self, open_transactions: usize) -> Result<Busy<'_>, ApiError> {
        self.enter_at(Instant::now(), open_transactions)
    }

    fn enter_at(&self, now: Instant, open_transactions: usize) -> Result<Busy<'_>, ApiError> {
        let Some(idle) = self.settings.idle else {
            self.lock().in_flight += 1;
            return Ok(Busy(self));
        };
        let mut s = self.lock();
        let phase = match s.phase {
            Phase::Awake { last }
                if s.in_flight == 0
                    && open_transactions == 0
                    && now.saturating_duration_since(last) >= idle =>
            {
                self.pauses.fetch_add(1, Ordering::Relaxed);
                Phase::Paused
            }
            other => other,
        };
        s.phase = match phase {
            Phase::Paused => Phase::Resuming {
                until: now + self.settings.resume,
            },
            Phase::Resuming { until } if now >= until => Phase::Awake { last: now },
            other => other,
        };
        match s.phase {
            Phase::Awake { .. } => {
                s.in_flight += 1;
                Ok(Busy(self))
            }
            _ => {
                self.refused_resuming.fetch_add(1, Ordering::Relaxed);
                Err(ApiError::DatabaseResuming(self.instance_id.clone()))
            }
        }
    }

    /// Pauses now, as if the idle time had passed (a test's shortcut).
    fn pause(&self) -> Result<(), String> {
        if self.settings.idle.is_none() {
            return Err("auto-pause is off: set PIXPORT_DATAAPI_AUTOPAUSE_IDLE_MS".into());
        }
        let mut s = self.lock();
        if s.in_flight > 0 {
            return Err("a call is running".into());
        }
        if matches!(s.phase, Phase::Awake { .. }) {
            self.pauses.fetch_add(1, Ordering::Relaxed);
            s.phase = Phase::Paused;
        }
        Ok(())
    }

    fn status(&self, open_transactions: usize) -> serde_json::Value {
        let now = Instant::now();
        let s = self.lock();
        let state = match (s.phase, self.settings.idle) {
            (Phase::Paused, _) => "paused",
            (Phase::Resuming { until }, _) if now < until => "resuming",
            (Phase::Resuming { .. }, _) => "awake",
            (Phase::Awake { last }, Some(idle))
                if s.in_flight == 0
                    && open_transactions == 0
                    && now.saturating_duration_since(last) >= idle =>
            {
                "paused"
            }
            (Phase::Awake { .. }, _) => "awake",
        };
        serde_json::json!({
            "state": state,
            "autoPause": self.settings.idle.is_some(),
            "calls": self.calls.load(Ordering::Relaxed),
            "refusedResuming": self.refused_resuming.load(Ordering::Relaxed),
            "pauses": self.pauses.load(Ordering::Relaxed),
        })
    }

    /// Answers the local-only endpoints; `None` for every other path.
    /// They answer only the hosts the operations answer (DNS rebinding).
    pub fn local_route<B>(
        &self,
        req: &Request<B>,
        open_transactions: usize,
        allowed_hosts: &[String],
    ) -> Option<Response<Full<Bytes>>> {
        let path = req.uri().path();
        if !path.starts_with("/__pixport/cluster") {
            return None;
        }
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let (status, body) = match (req.method(), path) {
            _ if !allowed_hosts.contains(&host) => (
                StatusCode::FORBIDDEN,
                serde_json::json!({ "message": format!("Host {host:?} is not served here") }),
            ),
            (&Method::GET, "/__pixport/cluster") => {
                (StatusCode::OK, self.status(open_transactions))
            }
            (&Method::POST, "/__pixport/cluster/pause") => match self.pause() {
                Ok(()) => (StatusCode::OK, self.status(open_transactions)),
                Err(e) => (StatusCode::CONFLICT, serde_json::json!({ "message": e })),
            },
            _ => (
                StatusCode::NOT_FOUND,
                serde_json::json!({ "message": "no such local endpoint" }),
            ),
        };
        Some(crate::respond(status, None, body.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(idle_ms: Option<u64>, resume_ms: u64) -> Cluster {
        Cluster::new(
            Settings {
                idle: idle_ms.map(Duration::from_millis),
                resume: Duration::from_millis(resume_ms),
                statement_timeout: STATEMENT_TIMEOUT,
            },
            "arn:aws:rds:us-east-1:0:cluster:pix",
        )
    }

    #[test]
    fn off_by_default_and_checked() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.idle, None);
        assert_eq!(s.statement_timeout, Duration::from_secs(45));
        let s = Settings::from_lookup(|k| {
            (k == "PIXPORT_DATAAPI_AUTOPAUSE_IDLE_MS").then(|| "0".to_string())
        })
        .unwrap();
        assert_eq!(s.idle, None, "0 is off");
        assert!(Settings::from_lookup(|_| Some("soon".into())).is_err());
        let c = cluster(None, 10);
        let t0 = Instant::now();
        assert!(c.enter_at(t0 + Duration::from_secs(3600), 0).is_ok());
    }

    #[test]
    fn idle_pauses_then_every_call_is_refused_until_resumed() {
        let c = cluster(Some(1000), 500);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        drop(c.enter_at(ms(10), 0).unwrap());
        // Awake while calls keep coming (each one ends now-ish, i.e. after t0).
        assert!(c.enter_at(ms(900), 0).is_ok());
        let e = c.enter_at(ms(5000), 0).err().unwrap();
        let (status, name, message) = e.parts();
        assert_eq!((status.as_u16(), name), (400, "DatabaseResumingException"));
        assert_eq!(
            message,
            "The Aurora DB instance pix-instance-1 is resuming after being auto-paused. \
             Please wait a few seconds and try again."
        );
        assert!(c.enter_at(ms(5300), 0).is_err());
        assert!(c.enter_at(ms(5499), 0).is_err());
        assert!(c.enter_at(ms(5500), 0).is_ok());
        assert_eq!(c.refused_resuming.load(Ordering::Relaxed), 3);
        assert_eq!(c.pauses.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_running_call_or_open_transaction_keeps_it_awake() {
        let c = cluster(Some(1000), 500);
        let t0 = Instant::now();
        let busy = c.enter_at(t0, 0).unwrap();
        assert!(c.enter_at(t0 + Duration::from_secs(10), 0).is_ok());
        drop(busy);
        assert!(
            c.enter_at(Instant::now() + Duration::from_secs(10), 1)
                .is_ok()
        );
    }

    #[test]
    fn pause_on_request_only_in_auto_pause_mode() {
        assert!(cluster(None, 10).pause().is_err());
        let c = cluster(Some(3_600_000), 10_000);
        c.pause().unwrap();
        assert_eq!(c.status(0)["state"], "paused");
        assert!(c.enter(0).is_err());
        assert_eq!(c.status(0)["state"], "resuming");
    }
}
