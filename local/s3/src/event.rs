//! S3 event notification records, shaped exactly like the JSON that S3 sends to
//! Lambda, so the resizer parses the same bytes locally and in AWS.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// S3 writes eventTime with millisecond precision and a literal `Z`.
const EVENT_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The ObjectCreated flavours this server can emit; the string is the event
/// name without the `s3:` prefix, as it appears in `Records[].eventName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedKind {
    Put,
    Copy,
    CompleteMultipartUpload,
}

impl CreatedKind {
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Put => "ObjectCreated:Put",
            Self::Copy => "ObjectCreated:Copy",
            Self::CompleteMultipartUpload => "ObjectCreated:CompleteMultipartUpload",
        }
    }
}

/// Encodes a key the way S3 does in notifications
/// (`application/x-www-form-urlencoded`: space becomes `+`, `/` is kept), so
/// handlers that `unquote_plus` the key in AWS work unchanged here.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                out.push(char::from(b))
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Hands out S3-style sequencers: upper-case hex that only grows, so consumers
/// can order events for one key by comparing the (zero-padded) strings.
#[derive(Debug, Default)]
pub struct Sequencer {
    last: AtomicU64,
}

impl Sequencer {
    pub fn next(&self, now: OffsetDateTime) -> String {
        let nanos = u64::try_from(now.unix_timestamp_nanos()).unwrap_or(0);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = nanos.max(prev.saturating_add(1));
            match self.last.compare_exchange_weak(
                prev,
                candidate,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return format!("{candidate:018X}"),
                Err(actual) => prev = actual,
            }
        }
    }
}

/// Everything about one created object that goes into a record.
#[derive(Debug, Clone)]
pub struct ObjectCreated {
    pub kind: CreatedKind,
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Without quotes, as S3 puts it in events.
    pub etag: String,
    pub version_id: Option<String>,
    pub principal_id: String,
    pub owner_id: String,
    pub source_ip: String,
    pub request_id: String,
    pub host_id: String,
    pub time: OffsetDateTime,
    pub sequencer: String,
}

#[derive(Debug, Serialize)]
pub struct Notification {
    #[serde(rename = "Records")]
    pub records: Vec<Record>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub event_version: &'static str,
    pub event_source: &'static str,
    pub aws_region: String,
    pub event_time: String,
    pub event_name: &'static str,
    pub user_identity: Principal,
    pub request_parameters: RequestParameters,
    pub response_elements: ResponseElements,
    pub s3: S3Entity,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub principal_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestParameters {
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
}

#[derive(Debug, Serialize)]
pub struct ResponseElements {
    #[serde(rename = "x-amz-request-id")]
    pub request_id: String,
    #[serde(rename = "x-amz-id-2")]
    pub id_2: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Entity {
    pub s3_schema_version: &'static str,
    pub configuration_id: String,
    pub bucket: BucketEntity,
    pub object: ObjectEntity,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketEntity {
    pub name: String,
    pub owner_identity: Principal,
    pub arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectEntity {
    pub key: String,
    pub size: u64,
    pub e_tag: String,
    /// S3 leaves the field out entirely for unversioned buckets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub sequencer: String,
}

/// One notification per matching configuration, as S3 sends them: a single
/// record whose `configurationId` names the rule that fired.
pub fn build(obj: &ObjectCreated, configuration_id: &str) -> Notification {
    let event_time = obj
        .time
        .to_offset(time::UtcOffset::UTC)
        .format(EVENT_TIME)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned());
    Notification {
        records: vec![Record {
            event_version: "2.1",
            event_source: "aws:s3",
            aws_region: obj.region.clone(),
            event_time,
            event_name: obj.kind.event_name(),
            user_identity: Principal {
                principal_id: obj.principal_id.clone(),
            },
            request_parameters: RequestParameters {
                source_ip_address: obj.source_ip.clone(),
            },
            response_elements: ResponseElements {
                request_id: obj.request_id.clone(),
                id_2: obj.host_id.clone(),
            },
            s3: S3Entity {
                s3_schema_version: "1.0",
                configuration_id: configuration_id.to_owned(),
                bucket: BucketEntity {
                    name: obj.bucket.clone(),
                    owner_identity: Principal {
                        principal_id: obj.owner_id.clone(),
                    },
                    arn: format!("arn:aws:s3:::{}", obj.bucket),
                },
                object: ObjectEntity {
                    key: encode_key(&obj.key),
                    size: obj.size,
                    e_tag: obj.etag.trim_matches('"').to_owned(),
                    version_id: obj.version_id.clone(),
                    sequencer: obj.sequencer.clone(),
                },
            },
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn key_encoding_matches_s3() {
        assert_eq!(
            encode_key("originals/red flower.jpg"),
            "originals/red+flower.jpg"
        );
        assert_eq!(encode_key("a+b=c:d"), "a%2Bb%3Dc%3Ad");
        assert_eq!(encode_key("ü.png"), "%C3%BC.png");
        assert_eq!(encode_key("x-y_z.*"), "x-y_z.*");
    }

    #[test]
    fn sequencer_grows_even_when_clock_stalls() {
        let s = Sequencer::default();
        let t = datetime!(2024-01-01 0:00 UTC);
        let a = s.next(t);
        let b = s.next(t);
        assert_eq!(a.len(), 18);
        assert!(b > a, "{b} > {a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
    }

    #[test]
    fn record_has_aws_shape() {
        let obj = ObjectCreated {
            kind: CreatedKind::Put,
            region: "us-east-1".into(),
            bucket: "b".into(),
            key: "originals/a b.jpg".into(),
            size: 3,
            etag: "\"abc\"".into(),
            version_id: None,
            principal_id: "AWS:X".into(),
            owner_id: "O".into(),
            source_ip: "127.0.0.1".into(),
            request_id: "R".into(),
            host_id: "H".into(),
            time: datetime!(2024-05-06 07:08:09.123456 UTC),
            sequencer: "00AB".into(),
        };
        let v = serde_json::to_value(build(&obj, "cfg")).expect("serialises");
        let r = &v["Records"][0];
        assert_eq!(r["eventVersion"], "2.1");
        assert_eq!(r["eventTime"], "2024-05-06T07:08:09.123Z");
        assert_eq!(r["eventName"], "ObjectCreated:Put");
        assert_eq!(r["requestParameters"]["sourceIPAddress"], "127.0.0.1");
        assert_eq!(r["responseElements"]["x-amz-request-id"], "R");
        assert_eq!(r["s3"]["configurationId"], "cfg");
        assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws:s3:::b");
        assert_eq!(r["s3"]["object"]["key"], "originals/a+b.jpg");
        assert_eq!(r["s3"]["object"]["eTag"], "abc");
        assert!(r["s3"]["object"].get("versionId").is_none());
    }
}
