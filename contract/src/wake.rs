//! How scheduled work decides, without the database, whether it has
//! anything to do, so an idle Aurora cluster (minimum capacity 0) can pause
//! instead of being woken by every run (docs/deploy.md, "Auto-pause").
//!
//! Two small S3 objects per kind of scheduled work (keys in `keys`): a
//! *signal* that whoever may have made work rewrites with a new token once
//! its write has committed, and a *record* the scheduled run writes after
//! each run that read the database: when the next item is due and which
//! signal token it had read *before* it queried. A run reads the database
//! only when the signal changed since the record, an item is due, or there
//! is no readable record. Because the signal is written after the commit
//! and read before the query, no work is missed: work made after the query
//! leaves a token the record does not name.

use serde::{Deserialize, Serialize};

/// The Lambda's wake-up call to the worker (`POST /internal/wake`): sent
/// right after an image is settled, so its webhook event goes out in
/// seconds rather than at the next cron minute. The body is JSON naming
/// the image; it is signed with a secret both sides hold (the worker's
/// `WAKE_SECRET`, the Lambda's `PIXPORT_WAKE_SECRET`) over the timestamp
/// and the body, so nobody else can make the worker read the database.
pub mod call {
    use crate::hmac::hmac_sha256;

    /// The worker's route.
    pub const PATH: &str = "/internal/wake";
    /// Unix seconds of the call, as text.
    pub const TIMESTAMP_HEADER: &str = "pixport-wake-timestamp";
    /// `v1=` + hex HMAC-SHA256 of `<timestamp>.<body>` keyed by the secret.
    pub const SIGNATURE_HEADER: &str = "pixport-wake-signature";
    /// How far a call's timestamp may be from the worker's clock: a replay
    /// later than this is refused (one within it only starts another
    /// delivery run, which sends nothing twice).
    pub const MAX_SKEW_SECS: u64 = 300;
    /// A secret shorter than this is refused by both configs.
    pub const MIN_SECRET_LEN: usize = 32;

    /// The signature header's value for a call.
    pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
        let mut msg = format!("{timestamp}.").into_bytes();
        msg.extend_from_slice(body);
        let mac = hmac_sha256(secret.as_bytes(), &msg);
        let mut out = String::with_capacity(3 + 64);
        out.push_str("v1=");
        for b in mac {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Whether `signature` is the one for this call, compared in constant
    /// time, and `timestamp` is within `MAX_SKEW_SECS` of `now_secs`.
    pub fn verify(
        secret: &str,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now_secs: u64,
    ) -> Result<(), &'static str> {
        let ts: u64 = timestamp
            .trim()
            .parse()
            .map_err(|_| "the timestamp is not unix seconds")?;
        if ts.abs_diff(now_secs) > MAX_SKEW_SECS {
            return Err("the timestamp is too far from now");
        }
        let want = self::signature(secret, ts, body);
        let got = signature.trim().as_bytes();
        let same = want.len() == got.len()
            && want.bytes().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same {
            Ok(())
        } else {
            Err("the signature does not match")
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_call_verifies_only_with_its_secret_body_and_time() {
            let secret = "s".repeat(32);
            let sig = signature(&secret, 1_000, b"{}");
            assert!(sig.starts_with("v1=") && sig.len() == 67);
            assert_eq!(verify(&secret, "1000", &sig, b"{}", 1_100), Ok(()));
            assert!(verify(&secret, "1000", &sig, b"{ }", 1_100).is_err());
            assert!(verify(&"t".repeat(32), "1000", &sig, b"{}", 1_100).is_err());
            assert!(verify(&secret, "1001", &sig, b"{}", 1_100).is_err());
            assert!(verify(&secret, "1000", &sig, b"{}", 1_000 + MAX_SKEW_SECS + 1).is_err());
            assert!(verify(&secret, "soon", &sig, b"{}", 1_000).is_err());
            assert!(verify(&secret, "1000", "v1=00", b"{}", 1_000).is_err());
        }
    }
}

/// What the last run that read the database recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// When the earliest item is due (unix ms); `None`: nothing waits.
    pub due_ms: Option<u64>,
    /// The signal token that run had read before it queried.
    pub seen: Option<String>,
}

/// The signal and the record as one run reads them before deciding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Look {
    pub signal: Option<String>,
    /// `None` when there is none or it does not parse.
    pub recorded: Option<Recorded>,
}

impl Look {
    /// From the two objects' text (`None`: the object does not exist).
    pub fn from_text(signal: Option<String>, recorded: Option<&str>) -> Self {
        Look {
            signal,
            recorded: recorded.and_then(|t| serde_json::from_str(t).ok()),
        }
    }

    /// Whether there may be work due at `now_ms`.
    pub fn due(&self, now_ms: u64) -> bool {
        match &self.recorded {
            None => true,
            Some(r) => r.seen != self.signal || r.due_ms.is_some_and(|d| d <= now_ms),
        }
    }

    /// The record a run that read the database leaves: `due_ms` from the
    /// database, the signal as read before the query.
    pub fn record(&self, due_ms: Option<u64>) -> String {
        let r = Recorded {
            due_ms,
            seen: self.signal.clone(),
        };
        serde_json::to_string(&r).unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(signal: Option<&str>, recorded: Option<(Option<u64>, Option<&str>)>) -> Look {
        Look {
            signal: signal.map(str::to_string),
            recorded: recorded.map(|(due_ms, seen)| Recorded {
                due_ms,
                seen: seen.map(str::to_string),
            }),
        }
    }

    #[test]
    fn nothing_new_and_nothing_due_is_not_due() {
        assert!(!look(None, Some((None, None))).due(1_000));
        assert!(!look(Some("a@1"), Some((None, Some("a@1")))).due(1_000));
        assert!(!look(Some("a@1"), Some((Some(2_000), Some("a@1")))).due(1_999));
    }

    #[test]
    fn a_new_signal_a_due_item_or_no_record_is_due() {
        assert!(look(Some("b@2"), Some((None, Some("a@1")))).due(1_000));
        assert!(look(Some("a@1"), Some((None, None))).due(1_000));
        assert!(look(Some("a@1"), Some((Some(2_000), Some("a@1")))).due(2_000));
        assert!(look(None, None).due(0));
        assert!(look(Some("a@1"), None).due(0));
    }

    #[test]
    fn the_record_round_trips_and_a_bad_one_counts_as_none() {
        let l = look(Some("x@1"), None);
        let text = l.record(Some(5));
        assert_eq!(text, r#"{"due_ms":5,"seen":"x@1"}"#);
        let again = Look::from_text(Some("x@1".into()), Some(&text));
        assert_eq!(
            again.recorded,
            Some(Recorded {
                due_ms: Some(5),
                seen: Some("x@1".into())
            })
        );
        assert!(!again.due(4));
        assert_eq!(Look::from_text(None, Some("not json")).recorded, None);
    }
}
