//! Waiting out a paused Aurora Serverless v2 cluster.
//!
//! With a minimum capacity of 0 the cluster pauses when idle; the next Data
//! API call resumes it but is itself refused with
//! `DatabaseResumingException`, and so is every call until the resume is
//! done (about 15 s). The call never reached the database, so sending it
//! again is safe, whatever the statement; the same holds for throttling.
//! Nothing else is retried here: a statement error or timeout may have
//! changed data, and an outage is the callers' own concern.
//!
//! The policy is pure (no clock, no timer): each host passes how long it has
//! waited so far and its own sleep, so the edge (wasm32) and the Lambda
//! (tokio) share it.

use std::future::Future;
use std::time::Duration;

use crate::{DataApiErrorKind, Error};

/// How long and how often a caller waits for a resuming cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeWait {
    /// The longest a caller waits in all, from its first refused call.
    pub budget: Duration,
    /// The wait after the first refusal; doubles per refusal.
    pub first: Duration,
    /// The longest single wait.
    pub max: Duration,
}

impl ResumeWait {
    /// For a client waiting on an HTTP answer (the edge worker): a resume
    /// takes about 15 s, so up to 22 s of waiting, then the caller answers
    /// 503 with `Retry-After`.
    pub const INTERACTIVE: ResumeWait = ResumeWait {
        budget: Duration::from_secs(22),
        first: Duration::from_millis(500),
        max: Duration::from_secs(4),
    };

    /// For background work with minutes to spare (the resize Lambda): a
    /// slow resume is waited out rather than turned into a retry later.
    pub const BACKGROUND: ResumeWait = ResumeWait {
        budget: Duration::from_secs(60),
        first: Duration::from_millis(500),
        max: Duration::from_secs(5),
    };

    /// Whether `e` is a refusal worth waiting out: the call did not run.
    pub fn applies(e: &Error) -> bool {
        matches!(e, Error::DataApi(d)
            if matches!(d.kind, DataApiErrorKind::DatabaseResuming | DataApiErrorKind::Throttling))
    }

    /// The wait before the next try after `refusals` refused calls (1 for
    /// the first), with `waited` spent since the first; `None` once the
    /// budget is used up. The last wait is cut to what the budget has left.
    pub fn next_delay(&self, refusals: u32, waited: Duration) -> Option<Duration> {
        let left = self.budget.checked_sub(waited)?;
        if left.is_zero() || refusals == 0 {
            return None;
        }
        let doublings = (refusals - 1).min(16);
        let delay = self.first.saturating_mul(1 << doublings).min(self.max);
        Some(delay.min(left))
    }

    /// Runs `call` until it answers with anything but a refusal this policy
    /// applies to, waiting with `sleep` between tries; `elapsed` tells how
    /// long it has been since `run` began. The last refusal is returned when
    /// the budget runs out.
    pub async fn run<T, C, CF, S, SF>(
        &self,
        mut call: C,
        mut sleep: S,
        elapsed: impl Fn() -> Duration,
    ) -> Result<T, Error>
    where
        C: FnMut() -> CF,
        CF: Future<Output = Result<T, Error>>,
        S: FnMut(Duration) -> SF,
        SF: Future<Output = ()>,
    {
        let mut refusals = 0u32;
        loop {
            match call().await {
                Err(e) if Self::applies(&e) => {
                    refusals += 1;
                    match self.next_delay(refusals, elapsed()) {
                        Some(d) => sleep(d).await,
                        None => return Err(e),
                    }
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use http::StatusCode;

    use super::*;
    use crate::{DataApiError, Service};

    fn refusal(kind: DataApiErrorKind, code: &str) -> Error {
        Error::DataApi(DataApiError {
            status: StatusCode::BAD_REQUEST,
            kind,
            code: code.into(),
            message: "m".into(),
            request_id: None,
            db_connection_id: None,
        })
    }

    fn resuming() -> Error {
        refusal(
            DataApiErrorKind::DatabaseResuming,
            "DatabaseResumingException",
        )
    }

    #[test]
    fn only_calls_that_never_ran_are_waited_for() {
        assert!(ResumeWait::applies(&resuming()));
        assert!(ResumeWait::applies(&refusal(
            DataApiErrorKind::Throttling,
            "ThrottlingException"
        )));
        for (kind, code) in [
            (
                DataApiErrorKind::StatementTimeout,
                "StatementTimeoutException",
            ),
            (DataApiErrorKind::DatabaseError, "DatabaseErrorException"),
            (DataApiErrorKind::BadRequest, "BadRequestException"),
            (
                DataApiErrorKind::ServiceUnavailable,
                "ServiceUnavailableError",
            ),
        ] {
            assert!(!ResumeWait::applies(&refusal(kind, code)), "{code}");
        }
        assert!(!ResumeWait::applies(&Error::unreachable(
            Service::DataApi,
            "refused"
        )));
    }

    #[test]
    fn waits_double_up_to_the_cap_and_stop_at_the_budget() {
        let p = ResumeWait::INTERACTIVE;
        let mut waited = Duration::ZERO;
        let mut waits = Vec::new();
        let mut n = 0;
        while let Some(d) = p.next_delay(n + 1, waited) {
            n += 1;
            waits.push(d.as_millis() as u64);
            waited += d;
        }
        assert_eq!(waits, [500, 1000, 2000, 4000, 4000, 4000, 4000, 2500]);
        assert_eq!(waited, p.budget);
        assert_eq!(p.next_delay(1, p.budget + Duration::from_secs(1)), None);
        assert_eq!(p.next_delay(40, Duration::ZERO), Some(p.max), "no overflow");
    }

    #[test]
    fn the_policies_cover_a_resume() {
        // Aurora resumes in about 15 s; both wait longer than that.
        let resume = Duration::from_secs(15);
        assert!(ResumeWait::INTERACTIVE.budget > resume);
        assert!(ResumeWait::BACKGROUND.budget >= ResumeWait::INTERACTIVE.budget);
    }

    /// A clock the sleeps move; no real time passes.
    fn run_with(
        p: ResumeWait,
        mut answers: Vec<Result<u32, Error>>,
    ) -> (Result<u32, Error>, usize, Duration) {
        answers.reverse();
        let answers = RefCell::new(answers);
        let clock = Cell::new(Duration::ZERO);
        let calls = Cell::new(0usize);
        let out = futures_executor::block_on(p.run(
            || {
                calls.set(calls.get() + 1);
                let next = answers
                    .borrow_mut()
                    .pop()
                    .unwrap_or_else(|| Err(resuming()));
                async move { next }
            },
            |d| {
                clock.set(clock.get() + d);
                async {}
            },
            || clock.get(),
        ));
        (out, calls.get(), clock.get())
    }

    #[test]
    fn a_resume_is_waited_out() {
        let (out, calls, waited) = run_with(
            ResumeWait::INTERACTIVE,
            vec![Err(resuming()), Err(resuming()), Err(resuming()), Ok(7)],
        );
        assert_eq!(out.unwrap(), 7);
        assert_eq!((calls, waited), (4, Duration::from_millis(3500)));
    }

    #[test]
    fn a_cluster_that_never_resumes_ends_in_its_refusal_within_budget() {
        let (out, calls, waited) = run_with(ResumeWait::INTERACTIVE, Vec::new());
        assert!(
            matches!(out, Err(Error::DataApi(d)) if d.kind == DataApiErrorKind::DatabaseResuming)
        );
        assert_eq!(waited, ResumeWait::INTERACTIVE.budget);
        assert_eq!(calls, 9);
    }

    #[test]
    fn statement_errors_are_returned_at_once() {
        let timeout = refusal(
            DataApiErrorKind::StatementTimeout,
            "StatementTimeoutException",
        );
        let (out, calls, waited) = run_with(ResumeWait::INTERACTIVE, vec![Err(timeout), Ok(1)]);
        assert!(out.is_err());
        assert_eq!((calls, waited), (1, Duration::ZERO));
    }
}
