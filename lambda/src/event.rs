//! S3 notification records -> the objects this function must process.

use aws_lambda_events::s3::S3Event;

/// Width sequencers are padded to before comparing: S3 emits hex of varying
/// length, and only equal-length strings order like the numbers they encode.
/// 64 is the `event_sequencer` column's size.
pub const SEQUENCER_WIDTH: usize = 64;

/// One S3 object an event refers to, with the key already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    pub bucket: String,
    pub key: String,
    /// Zero-padded, upper-case; all zeros when the record had none (a
    /// hand-made test event), which orders before any real event.
    pub sequencer: String,
    pub event_name: String,
    /// The object's size as the event reports it, when it does.
    pub size: Option<u64>,
}

impl ObjectEvent {
    /// `Some(id)` for `originals/<id>`; everything else (our own variants, a
    /// nested path, an empty id) is ignored so a misconfigured notification
    /// filter cannot make the function trigger itself.
    pub fn original_id(&self) -> Option<&str> {
        pixport_contract::keys::original_id(&self.key)
    }
}

/// Decodes a notification key: `application/x-www-form-urlencoded`, so `+` is
/// a space and `%2B` a plus. Invalid UTF-8 is replaced rather than refused:
/// such a key cannot be an `originals/<id>` we wrote anyway.
pub fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

pub fn pad_sequencer(seq: Option<&str>) -> String {
    let s = seq.unwrap_or("").trim().to_ascii_uppercase();
    if s.len() >= SEQUENCER_WIDTH {
        s
    } else {
        format!("{s:0>SEQUENCER_WIDTH$}")
    }
}

/// Records without a bucket or key are dropped: S3 never sends them, and a
/// malformed test event should not fail the whole batch.
pub fn objects(event: &S3Event) -> Vec<ObjectEvent> {
    event
        .records
        .iter()
        .filter_map(|r| {
            let bucket = r.s3.bucket.name.clone()?;
            let key = r.s3.object.key.as_deref().map(decode_key)?;
            Some(ObjectEvent {
                bucket,
                key,
                sequencer: pad_sequencer(r.s3.object.sequencer.as_deref()),
                event_name: r.event_name.clone().unwrap_or_default(),
                size: r.s3.object.size.and_then(|s| u64::try_from(s).ok()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(key: &str, seq: Option<&str>) -> S3Event {
        let mut object = serde_json::json!({"key": key, "size": 10, "eTag": "e"});
        if let Some(s) = seq {
            object["sequencer"] = s.into();
        }
        serde_json::from_value(serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2025-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "1.2.3.4"},
            "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
                   "bucket": {"name": "b", "ownerIdentity": {"principalId": "x"}, "arn": "arn:aws:s3:::b"},
                   "object": object}
        }]}))
        .unwrap()
    }

    #[test]
    fn decodes_plus_and_percent() {
        assert_eq!(
            decode_key("originals/red+flower%2B1.jpg"),
            "originals/red flower+1.jpg"
        );
        assert_eq!(decode_key("%C3%BC"), "ü");
        let o = &objects(&event("originals/a+b", Some("00ab")))[0];
        assert_eq!(o.key, "originals/a b");
        assert_eq!(o.original_id(), None, "a space is not part of an id");
    }

    #[test]
    fn ids_only_under_originals() {
        let o = |k: &str| ObjectEvent {
            bucket: "b".into(),
            key: k.into(),
            sequencer: pad_sequencer(None),
            event_name: String::new(),
            size: None,
        };
        assert_eq!(
            o("originals/01J0ABCDEFGHJKMNPQRSTVWXYZ").original_id(),
            Some("01J0ABCDEFGHJKMNPQRSTVWXYZ")
        );
        assert_eq!(o("variants/01J/1920.jpg").original_id(), None);
        assert_eq!(o("originals/").original_id(), None);
        assert_eq!(o("originals/a/b").original_id(), None);
        assert_eq!(o("xoriginals/a").original_id(), None);
    }

    #[test]
    fn sequencers_compare_after_padding() {
        let short = pad_sequencer(Some("FF"));
        let long = pad_sequencer(Some("0100"));
        assert_eq!(short.len(), SEQUENCER_WIDTH);
        assert!(short < long, "0xFF < 0x100 once padded");
        assert_eq!(pad_sequencer(Some("00ab")), pad_sequencer(Some("AB")));
        assert!(pad_sequencer(None) < short);
    }
}
