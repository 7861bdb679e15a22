//! The EventBridge rule of deploy/template.yaml, locally: every period, an
//! async invocation carrying EventBridge's scheduled-event document, which
//! the bootstrap answers with a redrive of rows due for another try.

use std::time::Duration;

use bytes::Bytes;

use crate::config::Config;
use crate::ids;
use crate::state::Queue;

/// The rule's name in `resources`, as the template names it.
pub fn rule_arn(cfg: &Config) -> String {
    format!(
        "arn:aws:events:{}:{}:rule/{}-redrive",
        cfg.region, cfg.account_id, cfg.function_name
    )
}

/// EventBridge's document for a scheduled rule (`source: aws.events`,
/// `detail-type: Scheduled Event`, `time` to the second).
pub fn scheduled_event(cfg: &Config, now: time::OffsetDateTime) -> Bytes {
    let time = now
        .replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Bytes::from(
        serde_json::json!({
            "version": "0",
            "id": ids::request_id(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": cfg.account_id,
            "time": time,
            "region": cfg.region,
            "resources": [rule_arn(cfg)],
            "detail": {},
        })
        .to_string(),
    )
}

/// Fires every `period`, the first one period after start (as a new rule does).
pub async fn run(cfg: Config, period: Duration, queue: Queue) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let fired = queue.submit_scheduled(scheduled_event(&cfg, time::OffsetDateTime::now_utc()));
        if fired {
            tracing::info!(rule = %rule_arn(&cfg), "scheduled invocation queued");
        } else {
            tracing::debug!("previous scheduled invocation still waiting; skipped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_has_eventbridges_shape() {
        let cfg = crate::config::tests::with_file(&[], |_| None).expect("defaults");
        let at = time::macros::datetime!(2026-11-30 12:00:01.5 UTC);
        let v: serde_json::Value = serde_json::from_slice(&scheduled_event(&cfg, at)).unwrap();
        assert_eq!(v["source"], "aws.events");
        assert_eq!(v["detail-type"], "Scheduled Event");
        assert_eq!(v["time"], "2026-11-30T12:00:01Z");
        assert_eq!(
            v["resources"][0],
            "arn:aws:events:us-east-1:000000000000:rule/pixport-resizer-redrive"
        );
    }
}
