//! The cleanup sweep, run by a cron trigger.
//!
//! An upload whose compensation itself failed (S3 or the Data API down at
//! the worst moment), or a direct upload the client never sent, leaves a row
//! in `uploading`. After a grace period such a row is settled by the object:
//! no original means the row goes; an original means the upload did land, so
//! the row moves on to `pending` and the resize event completes it.
//!
//! A DELETE that failed half way (its row says `deleting`) and was not
//! retried is finished the same way after the grace period: variants,
//! original, then the row. A `pending` row whose resize never finished in
//! that time (every Lambda attempt killed) is marked `failed`, so clients
//! are not told "pending" forever.

use crate::config::Config;
use crate::db::Db;
use crate::error::ApiResult;
use crate::model::{Image, Status, variants_prefix};
use crate::store::S3;
use crate::upload::{Catalog, Storage};

/// Rows younger than this may still be streaming.
pub const GRACE_MINUTES: u32 = 60;
const BATCH: u32 = 100;

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub deleted: usize,
    pub revived: usize,
    /// Half-done DELETEs finished.
    pub finished_deletes: usize,
    /// `pending` rows given up on.
    pub failed_pending: u64,
}

pub async fn sweep(cfg: &Config) -> ApiResult<Swept> {
    let (db, s3) = (Db { cfg }, S3 { cfg });
    let mut out = Swept::default();
    for img in db.stale(Status::Uploading, GRACE_MINUTES, BATCH).await? {
        if s3.exists(&img.original_key).await? {
            db.set_status_if(&img.id, Status::Uploading, Status::Pending)
                .await?;
            out.revived += 1;
        } else {
            db.delete_row(&img.id).await?;
            out.deleted += 1;
        }
    }
    for img in db.stale(Status::Deleting, GRACE_MINUTES, BATCH).await? {
        finish_delete(&s3, &db, &img).await?;
        out.finished_deletes += 1;
    }
    out.failed_pending = db.fail_stale_pending(GRACE_MINUTES).await?;
    Ok(out)
}

/// What a DELETE does once its row says `deleting`: the variants, the
/// original, then the row. `DELETE /images/{id}` runs it; the sweep runs it
/// again for one that stopped half way.
pub async fn finish_delete(s3: &S3<'_>, db: &Db<'_>, img: &Image) -> ApiResult<()> {
    for key in s3.list_keys(&variants_prefix(&img.id)).await? {
        s3.delete_object(&key).await?;
    }
    s3.delete_object(&img.original_key).await?;
    db.delete_row(&img.id).await
}
