//! What an invocation asks for: S3 records to resize, or a scheduled
//! redrive of rows whose passing failure is due for another try.

use aws_lambda_events::s3::S3Event;
use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug)]
pub enum Invocation {
    /// S3 `ObjectCreated` notification records.
    S3(Box<S3Event>),
    /// EventBridge's scheduled event (`source: aws.events`), or
    /// `{"action": "redrive"}` from an operator's `aws lambda invoke`.
    Redrive,
}

impl Invocation {
    pub fn parse(payload: Value) -> Result<Self> {
        if payload.get("Records").is_some() {
            return serde_json::from_value(payload)
                .map(|e| Invocation::S3(Box::new(e)))
                .map_err(|e| Error::BadEvent(format!("S3 event: {e}")));
        }
        let field = |name: &str| payload.get(name).and_then(Value::as_str);
        if field("source") == Some("aws.events") || field("action") == Some("redrive") {
            return Ok(Invocation::Redrive);
        }
        Err(Error::BadEvent(
            "neither S3 records nor a scheduled redrive".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_event_kinds_apart() {
        let scheduled = serde_json::json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "1", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:1:rule/r"], "detail": {}
        });
        assert!(matches!(
            Invocation::parse(scheduled),
            Ok(Invocation::Redrive)
        ));
        assert!(matches!(
            Invocation::parse(serde_json::json!({"action": "redrive"})),
            Ok(Invocation::Redrive)
        ));
        assert!(matches!(
            Invocation::parse(serde_json::json!({"Records": []})),
            Ok(Invocation::S3(e)) if e.records.is_empty()
        ));
        assert!(Invocation::parse(serde_json::json!({"Records": 3})).is_err());
        assert!(Invocation::parse(serde_json::json!({"hello": "world"})).is_err());
    }
}
