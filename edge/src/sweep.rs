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
//! original, then the row. A `pending` row is the resize Lambda's to retry
//! (its redrive re-processes it for hours, touching it each attempt); one
//! untouched for a day means no attempt runs at all, and is marked `failed`
//! so clients are not told "pending" forever.

use pixport_contract::Status;

use crate::delete;
use crate::error::ApiResult;
use crate::ports::{MetadataStore, ObjectStore};

/// Rows younger than this may still be streaming.
pub const GRACE_MINUTES: u32 = 60;
/// Longer than the Lambda's whole retry schedule between two attempts.
pub const PENDING_GIVE_UP_MINUTES: u32 = 24 * 60;
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

pub async fn sweep<S: ObjectStore, M: MetadataStore>(objects: &S, rows: &M) -> ApiResult<Swept> {
    let mut out = Swept::default();
    for img in rows.stale(Status::Uploading, GRACE_MINUTES, BATCH).await? {
        if objects.exists(&img.original_key).await? {
            rows.set_status_if(&img.id, Status::Uploading, Status::Pending)
                .await?;
            out.revived += 1;
        } else {
            rows.delete_row(&img.id).await?;
            out.deleted += 1;
        }
    }
    for img in rows.stale(Status::Deleting, GRACE_MINUTES, BATCH).await? {
        delete::finish(objects, rows, &img).await?;
        out.finished_deletes += 1;
    }
    out.failed_pending = rows.fail_stale_pending(PENDING_GIVE_UP_MINUTES).await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;
    use pixport_contract::keys;

    use super::*;
    use crate::ports::memory::Memory;

    const OLD: u32 = GRACE_MINUTES + 1;

    fn put(m: &Memory, key: &str) {
        m.objects.borrow_mut().insert(key.into(), b"x".to_vec());
    }

    #[test]
    fn stale_uploads_are_settled_by_their_original() {
        let m = Memory::default();
        let landed = m.insert_row("LANDED", Status::Uploading, OLD);
        put(&m, &landed.original_key);
        m.insert_row("LOST", Status::Uploading, OLD);
        let swept = block_on(sweep(&m, &m)).unwrap();
        assert_eq!((swept.revived, swept.deleted), (1, 1));
        assert_eq!(m.status("LANDED"), Some(Status::Pending));
        assert_eq!(m.status("LOST"), None);
        assert!(m.objects.borrow().contains_key(&landed.original_key));
    }

    #[test]
    fn rows_inside_the_grace_period_are_left_alone() {
        let m = Memory::default();
        for (id, status) in [
            ("UP", Status::Uploading),
            ("DEL", Status::Deleting),
            ("PEND", Status::Pending),
        ] {
            m.insert_row(id, status, GRACE_MINUTES);
        }
        assert_eq!(block_on(sweep(&m, &m)).unwrap(), Swept::default());
        assert_eq!(m.status("UP"), Some(Status::Uploading));
        assert_eq!(m.status("DEL"), Some(Status::Deleting));
        assert_eq!(m.status("PEND"), Some(Status::Pending));
    }

    #[test]
    fn half_done_deletes_are_finished() {
        let m = Memory::default();
        let img = m.insert_row("GONE", Status::Deleting, OLD);
        put(
            &m,
            &keys::variant("GONE", 320, pixport_contract::OutputFormat::Jpeg),
        );
        put(&m, &img.original_key);
        let swept = block_on(sweep(&m, &m)).unwrap();
        assert_eq!(swept.finished_deletes, 1);
        assert_eq!(m.status("GONE"), None);
        assert!(m.objects.borrow().is_empty());
    }

    #[test]
    fn pending_rows_untouched_for_a_day_fail_with_a_timeout_reason() {
        let m = Memory::default();
        m.insert_row("STUCK", Status::Pending, PENDING_GIVE_UP_MINUTES + 1);
        m.insert_row("DONE", Status::Ready, PENDING_GIVE_UP_MINUTES + 1);
        let swept = block_on(sweep(&m, &m)).unwrap();
        assert_eq!(swept.failed_pending, 1);
        assert_eq!(m.status("STUCK"), Some(Status::Failed));
        assert_eq!(m.status("DONE"), Some(Status::Ready));
        let reason = m.rows.borrow()["STUCK"].failure_reason.clone();
        assert!(reason.is_some_and(|r| r.starts_with("timeout:")));
    }

    #[test]
    fn pending_rows_the_lambda_still_retries_are_left_alone() {
        let m = Memory::default();
        m.insert_row("RETRYING", Status::Pending, OLD);
        m.insert_row("DAY", Status::Pending, PENDING_GIVE_UP_MINUTES);
        let swept = block_on(sweep(&m, &m)).unwrap();
        assert_eq!(swept.failed_pending, 0);
        assert_eq!(m.status("RETRYING"), Some(Status::Pending));
        assert_eq!(m.status("DAY"), Some(Status::Pending));
    }

    #[test]
    fn storage_down_keeps_every_row_for_the_next_sweep() {
        let m = Memory::failing(&["exists"]);
        m.insert_row("UP", Status::Uploading, OLD);
        let err = block_on(sweep(&m, &m)).unwrap_err();
        assert_eq!(err.status_and_code(), (503, "storage_unavailable"));
        assert_eq!(m.status("UP"), Some(Status::Uploading));
    }
}
