//! The image record as stored and as the domain hands it out. Its status
//! and variants are the contract's: the resize Lambda writes them.

use pixport_contract::{Placeholder, Status, StoredVariant};
use serde::Deserialize;

pub use crate::domain::fields::Metadata;
use crate::domain::sniff::Probe;
use crate::runtime::clock;

/// A row of `images`.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub id: String,
    pub owner: String,
    pub status: Status,
    pub meta: Metadata,
    pub file_name: Option<String>,
    pub content_type: String,
    pub format: Option<String>,
    pub bytes: Option<u64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub checksum_sha256: Option<String>,
    pub original_key: String,
    pub variants: Vec<StoredVariant>,
    /// What made the variants (`pixport_contract::Recipe`), as the resize
    /// Lambda recorded it; `None` before it did, or for rows made before
    /// recipes were recorded.
    pub recipe: Option<String>,
    /// Set with `ready` by the resize Lambda.
    pub placeholder: Option<Placeholder>,
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A new row, before the original is stored.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub id: String,
    pub owner: String,
    pub idempotency_key: Option<String>,
    pub meta: Metadata,
    pub file_name: Option<String>,
    /// What the file's head proved (a declared upload: its declared format,
    /// no dimensions until the resizer reads them).
    pub probe: Probe,
    pub original_key: String,
    /// The request that made it: stored with the original as object
    /// metadata, so the resize Lambda's log lines name it too.
    pub request_id: Option<String>,
    /// When its row is claimed (`created_at`).
    pub created: Moment,
}

impl NewImage {
    /// The image a form upload has just stored, as its row now reads,
    /// without reading it back: `pending`, with the fields and the file
    /// it was finished with. A resize that finished first (its event can
    /// beat the finishing update) shows on the next read.
    pub fn stored(&self, meta: &Metadata, bytes: u64, sha256_b64: &str, at: Moment) -> Image {
        Image {
            id: self.id.clone(),
            owner: self.owner.clone(),
            status: Status::Pending,
            meta: meta.clone(),
            file_name: self.file_name.clone(),
            content_type: self.probe.format.content_type().into(),
            format: Some(self.probe.format.as_str().into()),
            bytes: Some(bytes),
            width: Some(self.probe.width),
            height: Some(self.probe.height),
            checksum_sha256: Some(sha256_b64.into()),
            original_key: self.original_key.clone(),
            variants: vec![],
            recipe: None,
            placeholder: None,
            failure_reason: None,
            created_at: self.created.view(),
            updated_at: at.view(),
        }
    }
}

/// A moment the worker writes into a row (`created_at`, `updated_at`:
/// `DATETIME(3)`, UTC), in milliseconds since the Unix epoch. Written by
/// the worker rather than the database's clock so that an image can be
/// answered as it was written, without reading it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Moment(pub u64);

impl Moment {
    pub fn now() -> Self {
        Moment(clock::unix_ms(clock::now()))
    }

    /// `YYYY-MM-DD HH:MM:SS.mmm`, as MySQL takes a `DATETIME(3)`.
    pub fn sql(self) -> String {
        let (date, time, ms) = self.parts();
        format!("{date} {time}.{ms:03}")
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmm000Z`, as rows are read
    /// (`DATE_FORMAT(.., '%Y-%m-%dT%H:%i:%s.%fZ')`, microseconds).
    pub fn view(self) -> String {
        let (date, time, ms) = self.parts();
        format!("{date}T{time}.{ms:03}000Z")
    }

    fn parts(self) -> (String, String, u64) {
        let secs = self.0 / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        (
            format!("{y:04}-{m:02}-{d:02}"),
            format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
            self.0 % 1000,
        )
    }
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// What one owner holds, as the rows say.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Usage {
    pub images: i64,
    pub bytes: i64,
}

/// Filters for listing an owner's images.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub limit: u32,
    pub after: Option<String>,
    pub tag: Option<String>,
    pub status: Option<Status>,
    /// Whose rows: the caller's own; `None` only on the operators' route
    /// (every owner's).
    pub owner: Option<String>,
}

/// One page of a list, and whether more rows follow.
#[derive(Debug, Clone)]
pub struct ImagePage {
    pub images: Vec<Image>,
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_read_as_the_database_writes_them() {
        assert_eq!(Moment(0).sql(), "1970-01-01 00:00:00.000");
        // 2026-12-05T13:16:31.123Z
        let m = Moment(1_796_476_591_123);
        assert_eq!(m.sql(), "2026-12-05 13:16:31.123");
        assert_eq!(m.view(), "2026-12-05T13:16:31.123000Z");
        // A leap day and the last millisecond of a year.
        assert_eq!(
            Moment(951_782_400_000).view(),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(Moment(1_798_761_599_999).sql(), "2026-12-31 23:59:59.999");
    }
}
