//! The multipart uploads in progress, for ListMultipartUploads. s3s-fs keeps
//! an upload only as its id and parts, without bucket or key, so it cannot
//! list them (it answers `NotImplemented`); clients such as `aws s3api
//! list-multipart-uploads` and lifecycle-style cleanups need the list. One
//! small file per upload beside s3s-fs's own upload files in the root, so
//! the index survives a restart (or a SIGKILL) exactly as the parts do.

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use s3s::dto::{
    CommonPrefix, ListMultipartUploadsInput, ListMultipartUploadsOutput, MultipartUpload, Timestamp,
};
use serde::{Deserialize, Serialize};

const FILE_PREFIX: &str = ".pixport-mpu-";
const FILE_SUFFIX: &str = ".json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    /// Milliseconds since the epoch.
    pub initiated_ms: u64,
}

pub struct Uploads {
    root: PathBuf,
}

/// Upload ids come from clients on complete and abort; only s3s-fs's UUIDs
/// may name a file, so no id can reach outside the index.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl Uploads {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path(&self, upload_id: &str) -> Option<PathBuf> {
        valid_id(upload_id).then(|| {
            self.root
                .join(format!("{FILE_PREFIX}{upload_id}{FILE_SUFFIX}"))
        })
    }

    pub async fn record(&self, bucket: &str, key: &str, upload_id: &str) -> io::Result<()> {
        let path = self.path(upload_id).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "upload id is not a UUID")
        })?;
        let initiated_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let entry = Entry {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            initiated_ms,
        };
        let json = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        // Written whole then renamed, so a kill never leaves half an entry.
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, json).await?;
        tokio::fs::rename(&tmp, &path).await
    }

    pub async fn forget(&self, upload_id: &str) -> io::Result<()> {
        let Some(path) = self.path(upload_id) else {
            return Ok(());
        };
        match tokio::fs::remove_file(path).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    async fn entries(&self, bucket: &str) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.root).await?;
        while let Some(e) = dir.next_entry().await? {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if !(name.starts_with(FILE_PREFIX) && name.ends_with(FILE_SUFFIX)) {
                continue;
            }
            // A file that vanished (completed meanwhile) or is unreadable is
            // no upload in progress.
            let Ok(bytes) = tokio::fs::read(e.path()).await else {
                continue;
            };
            match serde_json::from_slice::<Entry>(&bytes) {
                Ok(entry) if entry.bucket == bucket => out.push(entry),
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(file = %name, error = %err, "unreadable multipart index entry")
                }
            }
        }
        Ok(out)
    }

    pub async fn list(
        &self,
        input: &ListMultipartUploadsInput,
    ) -> io::Result<ListMultipartUploadsOutput> {
        let entries = self.entries(&input.bucket).await?;
        Ok(page(entries, input))
    }
}

/// One page of the listing, in S3's order: by key, then by initiation.
pub fn page(
    mut entries: Vec<Entry>,
    input: &ListMultipartUploadsInput,
) -> ListMultipartUploadsOutput {
    let prefix = input.prefix.as_deref().unwrap_or("");
    let max = usize::try_from(input.max_uploads.unwrap_or(1000))
        .unwrap_or(0)
        .min(1000);
    entries.retain(|e| e.key.starts_with(prefix));
    entries.sort_by(|a, b| {
        (&a.key, a.initiated_ms, &a.upload_id).cmp(&(&b.key, b.initiated_ms, &b.upload_id))
    });

    if let Some(km) = input.key_marker.as_deref() {
        match input.upload_id_marker.as_deref() {
            // Resume inside the marker key, after the marker upload.
            Some(um) => {
                let after = entries
                    .iter()
                    .position(|e| e.key == km && e.upload_id == um);
                entries = entries
                    .into_iter()
                    .enumerate()
                    .filter(|(i, e)| {
                        e.key.as_str() > km || (e.key == km && after.is_some_and(|a| *i > a))
                    })
                    .map(|(_, e)| e)
                    .collect();
            }
            None => entries.retain(|e| e.key.as_str() > km),
        }
    }

    let mut uploads = Vec::new();
    let mut prefixes: BTreeSet<String> = BTreeSet::new();
    let mut last: Option<(String, Option<String>)> = None;
    let mut truncated = false;
    for e in entries {
        let rolled = input
            .delimiter
            .as_deref()
            .filter(|d| !d.is_empty())
            .and_then(|d| {
                e.key[prefix.len()..]
                    .find(d)
                    .map(|at| e.key[..prefix.len() + at + d.len()].to_owned())
            });
        if rolled.as_ref().is_some_and(|cp| prefixes.contains(cp)) {
            continue;
        }
        if uploads.len() + prefixes.len() >= max {
            truncated = true;
            break;
        }
        match rolled {
            Some(cp) => {
                last = Some((cp.clone(), None));
                prefixes.insert(cp);
            }
            None => {
                last = Some((e.key.clone(), Some(e.upload_id.clone())));
                uploads.push(MultipartUpload {
                    key: Some(e.key),
                    upload_id: Some(e.upload_id),
                    initiated: Some(Timestamp::from(
                        UNIX_EPOCH + Duration::from_millis(e.initiated_ms),
                    )),
                    storage_class: Some(s3s::dto::StorageClass::from_static(
                        s3s::dto::StorageClass::STANDARD,
                    )),
                    ..Default::default()
                });
            }
        }
    }
    let (next_key_marker, next_upload_id_marker) = match (truncated, last) {
        (true, Some((k, u))) => (Some(k), u),
        _ => (None, None),
    };
    ListMultipartUploadsOutput {
        bucket: Some(input.bucket.clone()),
        prefix: input.prefix.clone(),
        delimiter: input.delimiter.clone(),
        key_marker: input.key_marker.clone(),
        upload_id_marker: input.upload_id_marker.clone(),
        max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(truncated),
        next_key_marker,
        next_upload_id_marker,
        encoding_type: input.encoding_type.clone(),
        uploads: (!uploads.is_empty()).then_some(uploads),
        common_prefixes: (!prefixes.is_empty()).then(|| {
            prefixes
                .into_iter()
                .map(|p| CommonPrefix { prefix: Some(p) })
                .collect()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: &str, id: &str, t: u64) -> Entry {
        Entry {
            bucket: "b".into(),
            key: key.into(),
            upload_id: id.into(),
            initiated_ms: t,
        }
    }

    fn input() -> ListMultipartUploadsInput {
        ListMultipartUploadsInput::builder()
            .bucket("b".into())
            .build()
            .unwrap()
    }

    fn keys(o: &ListMultipartUploadsOutput) -> Vec<(String, String)> {
        o.uploads
            .iter()
            .flatten()
            .map(|u| (u.key.clone().unwrap(), u.upload_id.clone().unwrap()))
            .collect()
    }

    #[test]
    fn sorted_by_key_then_initiation_and_paged_with_both_markers() {
        let all = vec![e("b", "2", 1), e("a", "3", 5), e("a", "1", 9)];
        let mut i = input();
        i.max_uploads = Some(2);
        let p1 = page(all.clone(), &i);
        assert_eq!(
            keys(&p1),
            [("a".into(), "3".into()), ("a".into(), "1".into())]
        );
        assert_eq!(p1.is_truncated, Some(true));
        i.key_marker = p1.next_key_marker.clone();
        i.upload_id_marker = p1.next_upload_id_marker.clone();
        let p2 = page(all, &i);
        assert_eq!(keys(&p2), [("b".into(), "2".into())]);
        assert_eq!(p2.is_truncated, Some(false));
        assert_eq!(p2.next_key_marker, None);
    }

    #[test]
    fn prefix_and_delimiter_roll_up_keys() {
        let all = vec![
            e("d/x/1", "1", 1),
            e("d/x/2", "2", 1),
            e("d/y", "3", 1),
            e("e", "4", 1),
        ];
        let mut i = input();
        i.prefix = Some("d/".into());
        i.delimiter = Some("/".into());
        let p = page(all, &i);
        assert_eq!(keys(&p), [("d/y".into(), "3".into())]);
        let cps: Vec<_> = p
            .common_prefixes
            .unwrap()
            .into_iter()
            .map(|c| c.prefix.unwrap())
            .collect();
        assert_eq!(cps, ["d/x/"]);
    }

    #[test]
    fn ids_that_are_not_uuids_name_no_file() {
        assert!(valid_id("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!valid_id("../etc/passwd"));
        assert!(!valid_id(""));
    }
}
