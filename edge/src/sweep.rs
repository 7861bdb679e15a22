//! The cleanup sweep, run by a cron trigger.
//!
//! An upload whose compensation itself failed (S3 or the Data API down at
//! the worst moment), or a direct upload the client never sent, leaves a row
//! in `uploading`. After a grace period such a row is settled by the object:
//! no original means the row goes, with any variants a resize wrote before
//! the upload was undone; an original means the upload did land, so the row
//! moves on to `pending` and the resize event completes it.
//!
//! A DELETE that failed half way (its row says `deleting`) and was not
//! retried is finished the same way after the grace period: variants,
//! original, then the row. A `pending` row is the resize Lambda's to retry
//! (its redrive re-processes it for hours, touching it each attempt); one
//! untouched for a day means no attempt runs at all, and is marked `failed`
//! so clients are not told "pending" forever.

//!
//! Then the reconciler lists the bucket itself (`originals/` and
//! `variants/`) and removes every object older than the grace period whose
//! image has no row: a presigned PUT replayed after its image was DELETEd,
//! variants a resize wrote while its upload was being undone, anything a
//! crash stranded. Every write path inserts the row before the object, so
//! an object without a row past the grace period belongs to nothing.
//!
//! Each step and each row stands alone: a failure is logged, counted in
//! `errors` and left for the next run, and the rest of the sweep goes on.
//! Rows are read two columns at a time, so no batch can reach the Data
//! API's 1 MiB result cap whatever the rows' text holds.

use std::collections::BTreeSet;

use pixport_contract::{Status, keys};

use crate::delete;
use crate::error::ApiResult;
use crate::ports::{MetadataStore, ObjectStore, RowRef};

/// Rows younger than this may still be streaming; objects younger than this
/// may still be getting their row written or removed.
pub const GRACE_MINUTES: u32 = 60;
/// Longer than the Lambda's whole retry schedule between two attempts.
pub const PENDING_GIVE_UP_MINUTES: u32 = 24 * 60;
const BATCH: u32 = 100;
/// Ids asked about in one row lookup.
const LOOKUP: usize = 100;
/// Listing pages (1000 keys each) the reconciler reads per prefix and run:
/// with their row lookups (up to 10 per page) at most ~110 subrequests per
/// prefix, well inside a Worker's 1000; 20 000 objects per hour per prefix
/// at the half-hourly cron.
pub const RECONCILE_PAGES: usize = 10;

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub deleted: usize,
    pub revived: usize,
    /// Half-done DELETEs finished.
    pub finished_deletes: usize,
    /// `pending` rows given up on.
    pub failed_pending: u64,
    /// Objects removed because their image has no row.
    pub orphans: usize,
    /// Steps or rows that failed (logged; the next sweep tries again).
    pub errors: usize,
}

impl Swept {
    fn failed(&mut self, step: &str, id: Option<&str>, e: &crate::error::ApiError) {
        tracing::warn!(step, id, error = %e, "sweep step failed; left for the next run");
        self.errors += 1;
    }
}

pub async fn sweep<S: ObjectStore, M: MetadataStore>(objects: &S, rows: &M) -> Swept {
    let mut out = Swept::default();
    match rows.stale(Status::Uploading, GRACE_MINUTES, BATCH).await {
        Ok(stale) => {
            for img in stale {
                if let Err(e) = settle_upload(objects, rows, &img, &mut out).await {
                    out.failed("settle upload", Some(&img.id), &e);
                }
            }
        }
        Err(e) => out.failed("stale uploads", None, &e),
    }
    match rows.stale(Status::Deleting, GRACE_MINUTES, BATCH).await {
        Ok(stale) => {
            for img in stale {
                match delete::finish(objects, rows, &img.id, &img.original_key).await {
                    Ok(()) => out.finished_deletes += 1,
                    Err(e) => out.failed("finish delete", Some(&img.id), &e),
                }
            }
        }
        Err(e) => out.failed("stale deletes", None, &e),
    }
    match rows.fail_stale_pending(PENDING_GIVE_UP_MINUTES).await {
        Ok(n) => out.failed_pending = n,
        Err(e) => out.failed("stale pending", None, &e),
    }
    for prefix in [keys::ORIGINALS_PREFIX, keys::VARIANTS_PREFIX] {
        reconcile(objects, rows, prefix, &mut out).await;
    }
    out
}

async fn settle_upload<S: ObjectStore, M: MetadataStore>(
    objects: &S,
    rows: &M,
    img: &RowRef,
    out: &mut Swept,
) -> ApiResult<()> {
    if objects.exists(&img.original_key).await? {
        rows.set_status_if(&img.id, Status::Uploading, Status::Pending)
            .await?;
        out.revived += 1;
    } else {
        // A resize of the original may have written variants before the
        // upload was undone; with the row gone nothing would name them.
        delete::remove_variants(objects, &img.id).await?;
        rows.delete_row(&img.id).await?;
        out.deleted += 1;
    }
    Ok(())
}

/// Removes the objects under `prefix` older than the grace period whose
/// image has no row, one listing page at a time, at most `RECONCILE_PAGES`
/// pages per run from where the last run stopped: a run's subrequests stay
/// bounded however large the bucket, and every key is reached in turn.
pub async fn reconcile<S: ObjectStore, M: MetadataStore>(
    objects: &S,
    rows: &M,
    prefix: &str,
    out: &mut Swept,
) {
    let mut after = match rows.sweep_cursor(prefix).await {
        Ok(after) => after,
        Err(e) => return out.failed("read the sweep cursor", None, &e),
    };
    for _ in 0..RECONCILE_PAGES {
        let (page, next) = match objects.list_page(prefix, after.clone()).await {
            Ok(p) => p,
            Err(e) => return out.failed("list objects", None, &e),
        };
        let old: Vec<(String, &str)> = page
            .iter()
            .filter(|o| o.age_minutes > GRACE_MINUTES)
            .filter_map(|o| keys::image_id(&o.key).map(|id| (o.key.clone(), id)))
            .collect();
        let ids: Vec<&str> = old
            .iter()
            .map(|(_, id)| *id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in ids.chunks(LOOKUP) {
            let live: BTreeSet<String> = match rows.existing(chunk).await {
                Ok(live) => live.into_iter().collect(),
                Err(e) => {
                    out.failed("look up rows", None, &e);
                    continue;
                }
            };
            for (key, id) in old.iter().filter(|(_, id)| chunk.contains(id)) {
                if live.contains(*id) {
                    continue;
                }
                match objects.delete_object(key).await {
                    Ok(()) => {
                        tracing::info!(key, "removed an object whose image has no row");
                        out.orphans += 1;
                    }
                    Err(e) => out.failed("remove orphan", Some(id), &e),
                }
            }
        }
        after = next;
        if after.is_none() {
            break;
        }
    }
    // Stored only now: a run that failed part way redoes its pages, which
    // removes nothing twice (deleting a missing object succeeds).
    if let Err(e) = rows.set_sweep_cursor(prefix, after.as_deref()).await {
        out.failed("store the sweep cursor", None, &e);
    }
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
        // Written by a resize that ran before the upload was undone (young:
        // the reconciler's grace would keep them for an hour).
        put(&m, &format!("{}640.jpg", keys::variants_prefix("LOST")));
        put(&m, &format!("{}320.jpg", keys::variants_prefix("LOST")));
        let swept = block_on(sweep(&m, &m));
        assert_eq!((swept.revived, swept.deleted), (1, 1));
        assert_eq!(m.status("LANDED"), Some(Status::Pending));
        assert_eq!(m.status("LOST"), None);
        let objects = m.objects.borrow();
        assert!(objects.contains_key(&landed.original_key));
        assert!(!objects.keys().any(|k| k.starts_with("variants/")));
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
        assert_eq!(block_on(sweep(&m, &m)), Swept::default());
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
        let swept = block_on(sweep(&m, &m));
        assert_eq!(swept.finished_deletes, 1);
        assert_eq!(m.status("GONE"), None);
        assert!(m.objects.borrow().is_empty());
    }

    #[test]
    fn pending_rows_untouched_for_a_day_fail_with_a_timeout_reason() {
        let m = Memory::default();
        m.insert_row("STUCK", Status::Pending, PENDING_GIVE_UP_MINUTES + 1);
        m.insert_row("DONE", Status::Ready, PENDING_GIVE_UP_MINUTES + 1);
        let swept = block_on(sweep(&m, &m));
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
        let swept = block_on(sweep(&m, &m));
        assert_eq!(swept.failed_pending, 0);
        assert_eq!(m.status("RETRYING"), Some(Status::Pending));
        assert_eq!(m.status("DAY"), Some(Status::Pending));
    }

    #[test]
    fn storage_down_keeps_every_row_for_the_next_sweep() {
        let m = Memory::failing(&["exists"]);
        m.insert_row("UP", Status::Uploading, OLD);
        let swept = block_on(sweep(&m, &m));
        assert_eq!(swept.errors, 1);
        assert_eq!(m.status("UP"), Some(Status::Uploading));
    }

    #[test]
    fn one_failing_step_does_not_stop_the_rest() {
        let m = Memory::failing(&["stale-uploading"]);
        m.insert_row("UP", Status::Uploading, OLD);
        let gone = m.insert_row("GONE", Status::Deleting, OLD);
        put(&m, &gone.original_key);
        m.insert_row("STUCK", Status::Pending, PENDING_GIVE_UP_MINUTES + 1);
        let swept = block_on(sweep(&m, &m));
        assert_eq!(swept.errors, 1);
        assert_eq!((swept.finished_deletes, swept.failed_pending), (1, 1));
        assert_eq!(m.status("UP"), Some(Status::Uploading));
        assert_eq!(m.status("GONE"), None);
    }

    fn put_aged(m: &Memory, key: &str, age: u32) {
        put(m, key);
        m.object_ages.borrow_mut().insert(key.into(), age);
    }

    #[test]
    fn objects_without_a_row_are_removed_after_the_grace_period() {
        let m = Memory::default();
        m.page_keys.set(2);
        let kept = m.insert_row("KEPT", Status::Ready, 0);
        put_aged(&m, &kept.original_key, OLD);
        put_aged(&m, "variants/KEPT/320.jpg", OLD);
        put_aged(&m, "originals/REPLAYED", OLD);
        put_aged(&m, "variants/UNDONE/320.jpg", OLD);
        put_aged(&m, "variants/UNDONE/640.jpg", OLD);
        put_aged(&m, "originals/YOUNG", GRACE_MINUTES);
        put_aged(&m, "variants/YOUNG/320.jpg", 0);
        put_aged(&m, "variants/not an id/320.jpg", OLD);
        let swept = block_on(sweep(&m, &m));
        assert_eq!((swept.orphans, swept.errors), (3, 0));
        let left: Vec<String> = m.objects.borrow().keys().cloned().collect();
        assert_eq!(
            left,
            [
                "originals/KEPT",
                "originals/YOUNG",
                "variants/KEPT/320.jpg",
                "variants/YOUNG/320.jpg",
                "variants/not an id/320.jpg",
            ]
        );
    }

    #[test]
    fn each_run_goes_a_bounded_way_and_the_next_goes_on_from_there() {
        let m = Memory::default();
        m.page_keys.set(2);
        let per_run = 2 * RECONCILE_PAGES;
        let orphans: Vec<String> = (0..per_run + 5)
            .map(|n| format!("originals/ORPHAN{n:03}"))
            .collect();
        for key in &orphans {
            put_aged(&m, key, OLD);
        }
        let first = block_on(sweep(&m, &m));
        assert_eq!((first.orphans, first.errors), (per_run, 0));
        let stopped = m.cursors.borrow().get(keys::ORIGINALS_PREFIX).cloned();
        assert_eq!(stopped.as_deref(), Some(orphans[per_run - 1].as_str()));
        // New orphans before the cursor wait for the next pass from the start.
        put_aged(&m, "originals/AAAA", OLD);
        let second = block_on(sweep(&m, &m));
        assert_eq!(second.orphans, 5);
        assert_eq!(m.cursors.borrow().get(keys::ORIGINALS_PREFIX), None);
        let third = block_on(sweep(&m, &m));
        assert_eq!(third.orphans, 1);
        assert!(m.objects.borrow().is_empty());
    }

    #[test]
    fn a_failed_row_lookup_removes_nothing() {
        let m = Memory::failing(&["existing"]);
        put_aged(&m, "originals/MAYBE", OLD);
        let swept = block_on(sweep(&m, &m));
        assert_eq!((swept.orphans, swept.errors), (0, 1));
        assert!(m.objects.borrow().contains_key("originals/MAYBE"));
    }
}
