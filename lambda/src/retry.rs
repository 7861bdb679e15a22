//! When a resize that failed for a passing reason is tried again, and when
//! it is given up.
//!
//! Lambda's own async retries (two, about 1 and 2 minutes apart) are over
//! within minutes, shorter than an S3 or Aurora incident can be. So the row
//! carries the schedule: `attempts` and `next_attempt_at`, and the scheduled
//! redrive re-processes rows whose time has come, with backoff, until they
//! are `ready` or `max_attempts` says the failure is not passing after all.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts (every delivery, retry and redrive counts) before a
    /// transient failure is recorded as `failed`.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubles per attempt.
    pub base: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// How long a started attempt keeps the row from the redrive: longer than
    /// the function's timeout, so only an attempt that died is re-driven.
    pub lease: Duration,
    /// A `pending` row no attempt ever claimed (its event was lost, or every
    /// delivery failed before the claim) is re-driven after this long.
    pub idle: Duration,
    /// Rows one redrive run takes on at most.
    pub batch: u32,
    /// How often a newer upload may restart a `failed` image with a fresh
    /// attempt count; after that the image stays `failed`, so re-sending
    /// an upload cannot buy resizes without end.
    pub max_restarts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            base: Duration::from_secs(60),
            max_delay: Duration::from_secs(3600),
            lease: Duration::from_secs(900),
            idle: Duration::from_secs(300),
            batch: 20,
            max_restarts: 2,
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `attempts` have failed, or
    /// `None` when they are used up.
    pub fn after_failure(&self, attempts: u32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(30);
        Some(self.base.saturating_mul(1 << doublings).min(self.max_delay))
    }

    /// How long the schedule keeps trying, from the first failure to the
    /// last attempt (documentation and tests: "many hours" by default).
    pub fn span(&self) -> Duration {
        (1..self.max_attempts)
            .filter_map(|a| self.after_failure(a))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_then_gives_up() {
        let p = RetryPolicy::default();
        let mins = |a| p.after_failure(a).map(|d| d.as_secs() / 60);
        assert_eq!(
            (1..=12).map(mins).collect::<Vec<_>>(),
            [
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(32),
                Some(60),
                Some(60),
                Some(60),
                Some(60),
                Some(60),
                None
            ]
        );
        assert_eq!(p.span().as_secs() / 60, 363, "about six hours of trying");
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let p = RetryPolicy {
            max_attempts: u32::MAX,
            ..RetryPolicy::default()
        };
        assert_eq!(p.after_failure(1000), Some(p.max_delay));
    }
}
