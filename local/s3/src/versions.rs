//! Noncurrent versions, as S3 keeps them in a versioned bucket
//! (deploy/template.yaml enables versioning): a DeleteObject without a
//! version id does not destroy the object, it becomes a noncurrent version
//! behind a delete marker, which an operator can list
//! (ListObjectVersions) and read back (GetObject with `versionId`) to
//! restore it. Who may do that is IAM's business (`s3:ListBucketVersions`,
//! `s3:GetObjectVersion`, `s3:DeleteObjectVersion`: no role of the
//! template has them; see access.rs).
//!
//! Storage: `<root>/.pixport-versions/<bucket>/<key>.versions/<id>` holds a
//! noncurrent version's bytes and `<id>.delete-marker` marks a delete
//! (`.pixport-versions` is no valid bucket name, so it is never listed as
//! one). Ids grow with time, so the newest entry of a key sorts last.
//! What is not kept: overwrites (PutObject over an existing key replaces it,
//! as s3s-fs does) and the lifecycle's noncurrent expiry; objects are shown
//! with version id `null`, as S3 shows objects written before versioning.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

const DIR: &str = ".pixport-versions";
const KEY_SUFFIX: &str = ".versions";
const MARKER_SUFFIX: &str = ".delete-marker";

/// One entry of a key's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub version_id: String,
    pub modified: SystemTime,
    pub size: u64,
    pub delete_marker: bool,
}

pub struct Versions {
    dir: PathBuf,
    seq: AtomicU64,
}

impl Versions {
    pub fn new(root: &Path) -> Self {
        Self {
            dir: root.join(DIR),
            seq: AtomicU64::new(0),
        }
    }

    /// Where a key's history lives; `None` for a key that would leave the
    /// store (`..`, a leading `/`: s3s-fs refuses those anyway).
    fn key_dir(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        let unsafe_key = key.starts_with('/') || key.split('/').any(|s| s == ".." || s == ".");
        (!unsafe_key && s3s::path::check_bucket_name(bucket))
            .then(|| self.dir.join(bucket).join(format!("{key}{KEY_SUFFIX}")))
    }

    /// A new version id: nanoseconds since the epoch plus a counter, so
    /// two in the same nanosecond still differ and ids sort by time.
    fn next_id(&self) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = self.seq.fetch_add(1, Ordering::Relaxed) % 1000;
        format!("{nanos:020}{n:03}")
    }

    /// Called before the object at `current` (bucket `bucket`, key `key`)
    /// is deleted: keeps its bytes as a noncurrent version and records a
    /// delete marker. Returns the marker's version id, or `None` when there
    /// was no object (S3 records a marker anyway; nothing is lost here).
    pub async fn keep(
        &self,
        current: &Path,
        bucket: &str,
        key: &str,
    ) -> std::io::Result<Option<String>> {
        if key.ends_with('/')
            || !tokio::fs::metadata(current)
                .await
                .is_ok_and(|m| m.is_file())
        {
            return Ok(None);
        }
        let Some(dir) = self.key_dir(bucket, key) else {
            return Ok(None);
        };
        tokio::fs::create_dir_all(&dir).await?;
        let version = self.next_id();
        // A second link to the file about to be unlinked: no copy, and the
        // bytes outlive the delete.
        if tokio::fs::hard_link(current, dir.join(&version))
            .await
            .is_err()
        {
            tokio::fs::copy(current, dir.join(&version)).await?;
        }
        let marker = self.next_id();
        tokio::fs::write(dir.join(format!("{marker}{MARKER_SUFFIX}")), b"").await?;
        Ok(Some(marker))
    }

    /// The bytes of one noncurrent version, if it exists.
    pub async fn read(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> std::io::Result<Option<(Bytes, SystemTime)>> {
        if version_id.is_empty() || !version_id.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let Some(dir) = self.key_dir(bucket, key) else {
            return Ok(None);
        };
        let path = dir.join(version_id);
        match tokio::fs::read(&path).await {
            Ok(b) => {
                let modified = tokio::fs::metadata(&path).await?.modified()?;
                Ok(Some((Bytes::from(b), modified)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every kept entry of the keys under `prefix`, by key, newest first.
    pub async fn list(&self, bucket: &str, prefix: &str) -> std::io::Result<Vec<Entry>> {
        if !s3s::path::check_bucket_name(bucket) {
            return Ok(Vec::new());
        }
        let base = self.dir.join(bucket);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let mut it = match tokio::fs::read_dir(&dir).await {
                Ok(it) => it,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            while let Some(entry) = it.next_entry().await? {
                let path = entry.path();
                let meta = entry.metadata().await?;
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Some(key) = dir
                    .strip_prefix(&base)
                    .ok()
                    .and_then(|p| p.to_str())
                    .and_then(|p| p.strip_suffix(KEY_SUFFIX))
                else {
                    continue;
                };
                if !key.starts_with(prefix) {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                let (version_id, delete_marker) = match name.strip_suffix(MARKER_SUFFIX) {
                    Some(id) => (id.to_owned(), true),
                    None => (name, false),
                };
                out.push(Entry {
                    key: key.to_owned(),
                    version_id,
                    modified: meta.modified()?,
                    size: if delete_marker { 0 } else { meta.len() },
                    delete_marker,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key).then(b.version_id.cmp(&a.version_id)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deleted_object_is_kept_behind_a_marker() {
        let root = std::env::temp_dir().join(format!("pixport-versions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("bkt/originals")).unwrap();
        let current = root.join("bkt/originals/X");
        std::fs::write(&current, b"photo").unwrap();
        let v = Versions::new(&root);
        let marker = v
            .keep(&current, "bkt", "originals/X")
            .await
            .unwrap()
            .unwrap();
        assert!(
            v.keep(&root.join("bkt/none"), "bkt", "none")
                .await
                .unwrap()
                .is_none()
        );
        let list = v.list("bkt", "originals/").await.unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].delete_marker && list[0].version_id == marker);
        assert!(!list[1].delete_marker && list[1].size == 5);
        let (bytes, _) = v
            .read("bkt", "originals/X", &list[1].version_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&bytes[..], b"photo");
        assert!(
            v.read("bkt", "originals/X", "../X")
                .await
                .unwrap()
                .is_none()
        );
        assert!(v.list("bkt", "variants/").await.unwrap().is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
