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
//! image has no row: variants a resize wrote while its upload was being
//! undone, anything a crash stranded. Every write path inserts the row
//! before the object, and a presigned PUT that outlives its DELETE leaves a
//! tombstone row until it has expired, so an object without a row past the
//! grace period belongs to nothing.
//!
//! Because it deletes what the database does not know, the reconciler
//! refuses to act when what it sees is implausible: a database that records
//! another bucket than the one listed (a staging worker pointed at the
//! production bucket, a wrong `DB_NAME`), or more orphans in one run than
//! `RECONCILE_MAX_DELETES` (a restored or emptied database). It can be run
//! as a dry run or switched off (`RECONCILE_MODE`), and logs every key it
//! deletes.
//!
//! Each step and each row stands alone: a failure is logged, counted in
//! `errors` and left for the next run, and the rest of the sweep goes on.
//! Rows are read two columns at a time, so no batch can reach the Data
//! API's 1 MiB result cap whatever the rows' text holds.

use std::collections::BTreeSet;

use pixport_contract::{Status, keys};

use crate::domain::delete;
use crate::domain::error::Result;
use crate::domain::ports::{ImageRows, Listed, ObjectStore, RowRef, SweepRows};

/// Rows younger than this may still be streaming; objects younger than this
/// may still be getting their row written or removed.
pub const GRACE_MINUTES: u32 = 60;
/// Longer than the Lambda's whole retry schedule between two attempts.
pub const PENDING_GIVE_UP_MINUTES: u32 = 24 * 60;
const BATCH: u32 = 100;
/// Ids asked about in one row lookup.
const LOOKUP: usize = 100;
/// Most listing pages (1000 keys each) the reconciler reads per prefix and
/// run; the subrequest budget usually stops it first.
pub const RECONCILE_PAGES: usize = 10;
/// Subrequests (S3 calls and Data API statements, one each) the reconciler
/// may spend per prefix and run: listing pages, row lookups, deletes and
/// its cursor. 2 x 500 of a Worker invocation's 10 000 (docs/edge.md).
pub const RECONCILE_SUBREQUESTS: usize = 500;
/// Default of `RECONCILE_MAX_DELETES`.
pub const RECONCILE_MAX_DELETES_DEFAULT: usize = 100;

/// What the reconciler may do (`RECONCILE_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deletes orphans (`on`, the default).
    On,
    /// Finds and logs them, deletes nothing (`dry-run`).
    DryRun,
    /// Does not list the bucket at all (`off`).
    Off,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "" | "on" => Some(Self::On),
            "dry-run" => Some(Self::DryRun),
            "off" => Some(Self::Off),
            _ => None,
        }
    }
}

/// The reconciler's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconcile {
    pub mode: Mode,
    /// More orphans than this in one run and it deletes none.
    pub max_deletes: usize,
    /// The bucket it lists; the database must record the same one.
    pub bucket: String,
    /// Subrequests per prefix and run.
    pub subrequests: usize,
}

/// Why the reconciler refused to delete anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The database records another bucket.
    OtherBucket { recorded: String },
    /// More orphans in one run than `max_deletes`.
    TooManyOrphans { found: usize, max: usize },
}

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub deleted: usize,
    pub revived: usize,
    /// Half-done DELETEs (and expired tombstones) finished.
    pub finished_deletes: usize,
    /// `pending` rows given up on.
    pub failed_pending: u64,
    /// Objects removed because their image has no row.
    pub orphans: usize,
    /// Orphans a dry run found and left.
    pub dry_run_orphans: usize,
    /// Why the reconciler deleted nothing, when it refused.
    pub refused: Option<Refusal>,
    /// Steps or rows that failed (logged; the next sweep tries again).
    pub errors: usize,
}

impl Swept {
    fn failed(&mut self, step: &str, id: Option<&str>, e: &crate::domain::error::Error) {
        tracing::warn!(step, id, error = %e, "sweep step failed; left for the next run");
        self.errors += 1;
    }
}

pub async fn sweep<S: ObjectStore, M: SweepRows + ImageRows>(
    objects: &S,
    rows: &M,
    rules: &Reconcile,
) -> Swept {
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
    reconcile(objects, rows, rules, &mut out).await;
    out
}

async fn settle_upload<S: ObjectStore, M: SweepRows + ImageRows>(
    objects: &S,
    rows: &M,
    img: &RowRef,
    out: &mut Swept,
) -> Result<()> {
    if objects.exists(&img.original_key).await? {
        rows.set_status_if(&img.id, Status::Uploading, Status::Pending)
            .await?;
        out.revived += 1;
    } else {
        // An abandoned multipart upload's parts are billed until aborted.
        delete::abort_uploads(objects, &img.original_key).await?;
        // A resize of the original may have written variants before the
        // upload was undone; with the row gone nothing would name them.
        delete::remove_variants(objects, &img.id).await?;
        rows.delete_row(&img.id).await?;
        out.deleted += 1;
    }
    Ok(())
}

/// Orphans found under one prefix, and where the next run goes on from.
struct Scan {
    prefix: &'static str,
    orphans: Vec<String>,
    /// The last key handled (`None`: the end of the prefix was reached).
    after: Option<String>,
    /// Subrequests spent so far.
    spent: usize,
}

/// Removes the objects under `originals/` and `variants/` older than the
/// grace period whose image has no row: first both prefixes are scanned
/// (from where the last run stopped, within the subrequest budget), then,
/// unless a check refuses, the orphans found are deleted and the cursors
/// stored. A refused run stores no cursor: the next one looks again.
pub async fn reconcile<S: ObjectStore, M: SweepRows + ImageRows>(
    objects: &S,
    rows: &M,
    rules: &Reconcile,
    out: &mut Swept,
) {
    if rules.mode == Mode::Off {
        tracing::info!("reconciler off (RECONCILE_MODE)");
        return;
    }
    match rows.recorded_bucket(&rules.bucket).await {
        Ok(recorded) if recorded == rules.bucket => {}
        Ok(recorded) => {
            tracing::error!(
                bucket = %rules.bucket,
                recorded = %recorded,
                "reconciler refused: the database belongs to another bucket; nothing deleted"
            );
            out.refused = Some(Refusal::OtherBucket { recorded });
            return;
        }
        Err(e) => return out.failed("read the recorded bucket", None, &e),
    }
    let mut scans = Vec::new();
    for prefix in [keys::ORIGINALS_PREFIX, keys::VARIANTS_PREFIX] {
        match scan(objects, rows, prefix, rules.subrequests, out).await {
            Some(s) => scans.push(s),
            None => return,
        }
    }
    let found: usize = scans.iter().map(|s| s.orphans.len()).sum();
    if rules.mode == Mode::DryRun {
        for key in scans.iter().flat_map(|s| &s.orphans) {
            tracing::info!(key = %key, "dry run: would remove an object whose image has no row");
        }
        out.dry_run_orphans = found;
    } else if found > rules.max_deletes {
        tracing::error!(
            found,
            max = rules.max_deletes,
            "reconciler refused: more objects without a row than RECONCILE_MAX_DELETES; nothing deleted"
        );
        out.refused = Some(Refusal::TooManyOrphans {
            found,
            max: rules.max_deletes,
        });
        return;
    }
    for s in scans {
        if rules.mode == Mode::On {
            for key in &s.orphans {
                match objects.delete_object(key).await {
                    Ok(()) => {
                        tracing::info!(key = %key, "removed an object whose image has no row");
                        out.orphans += 1;
                    }
                    Err(e) => out.failed("remove orphan", Some(key), &e),
                }
            }
        }
        // Stored only now: a run that failed part way redoes its pages,
        // which removes nothing twice (deleting a missing object succeeds).
        if let Err(e) = rows.set_sweep_cursor(s.prefix, s.after.as_deref()).await {
            out.failed("store the sweep cursor", None, &e);
        }
    }
}

/// The subrequests one listing page can cost before its deletes: the
/// listing and a lookup per `LOOKUP` ids.
const PAGE_COST: usize = 1 + 1000usize.div_ceil(LOOKUP);

/// Lists `prefix` from its cursor, page by page, and finds the old objects
/// whose image has no row, as long as the budget holds them: the listing,
/// its lookups, one delete per orphan and the cursor's read and write each
/// count one. A page whose orphans do not all fit is cut before the first
/// that does not, and the cursor stops there. `None` when the cursor could
/// not be read or a listing failed (logged, in `errors`).
async fn scan<S: ObjectStore, M: SweepRows + ImageRows>(
    objects: &S,
    rows: &M,
    prefix: &'static str,
    budget: usize,
    out: &mut Swept,
) -> Option<Scan> {
    let mut after = match rows.sweep_cursor(prefix).await {
        Ok(after) => after,
        Err(e) => {
            out.failed("read the sweep cursor", None, &e);
            return None;
        }
    };
    // The cursor's read and its write.
    let mut s = Scan {
        prefix,
        orphans: Vec::new(),
        after: after.clone(),
        spent: 2,
    };
    for _ in 0..RECONCILE_PAGES {
        if s.spent + s.orphans.len() + PAGE_COST >= budget {
            break;
        }
        let (page, next) = match objects.list_page(prefix, after.clone()).await {
            Ok(p) => p,
            Err(e) => {
                out.failed("list objects", None, &e);
                return None;
            }
        };
        s.spent += 1;
        let dead = dead_keys(rows, &page, &mut s.spent, out).await;
        let room = budget.saturating_sub(s.spent + s.orphans.len());
        if dead.len() > room {
            // Everything before the first orphan left out is handled.
            let first_left = &dead[room];
            s.orphans.extend(dead[..room].iter().cloned());
            s.after = page
                .iter()
                .take_while(|o| &o.key < first_left)
                .last()
                .map(|o| o.key.clone())
                .or(after);
            return Some(s);
        }
        s.orphans.extend(dead);
        after = next;
        s.after = after.clone();
        if after.is_none() {
            break;
        }
    }
    Some(s)
}

/// The keys of one listing page older than the grace period whose image
/// has no row, in key order. A failed lookup counts its keys as live.
async fn dead_keys<M: SweepRows + ImageRows>(
    rows: &M,
    page: &[Listed],
    spent: &mut usize,
    out: &mut Swept,
) -> Vec<String> {
    let old: Vec<(&str, &str)> = page
        .iter()
        .filter(|o| o.age_minutes > GRACE_MINUTES)
        .filter_map(|o| keys::image_id(&o.key).map(|id| (o.key.as_str(), id)))
        .collect();
    let ids: Vec<&str> = old
        .iter()
        .map(|(_, id)| *id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut dead = BTreeSet::new();
    for chunk in ids.chunks(LOOKUP) {
        *spent += 1;
        match rows.existing(chunk).await {
            Ok(live) => {
                let live: BTreeSet<String> = live.into_iter().collect();
                dead.extend(chunk.iter().filter(|id| !live.contains(**id)).copied());
            }
            Err(e) => out.failed("look up rows", None, &e),
        }
    }
    old.iter()
        .filter(|(_, id)| dead.contains(id))
        .map(|(key, _)| key.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;
    use pixport_contract::keys;

    use super::*;
    use crate::adapters::memory::Memory;

    const OLD: u32 = GRACE_MINUTES + 1;

    fn rules() -> Reconcile {
        Reconcile {
            mode: Mode::On,
            max_deletes: RECONCILE_MAX_DELETES_DEFAULT,
            bucket: "bucket".into(),
            subrequests: RECONCILE_SUBREQUESTS,
        }
    }

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
        let swept = block_on(sweep(&m, &m, &rules()));
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
        assert_eq!(block_on(sweep(&m, &m, &rules())), Swept::default());
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
        let swept = block_on(sweep(&m, &m, &rules()));
        assert_eq!(swept.finished_deletes, 1);
        assert_eq!(m.status("GONE"), None);
        assert!(m.objects.borrow().is_empty());
    }

    #[test]
    fn pending_rows_untouched_for_a_day_fail_with_a_timeout_reason() {
        let m = Memory::default();
        m.insert_row("STUCK", Status::Pending, PENDING_GIVE_UP_MINUTES + 1);
        m.insert_row("DONE", Status::Ready, PENDING_GIVE_UP_MINUTES + 1);
        let swept = block_on(sweep(&m, &m, &rules()));
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
        let swept = block_on(sweep(&m, &m, &rules()));
        assert_eq!(swept.failed_pending, 0);
        assert_eq!(m.status("RETRYING"), Some(Status::Pending));
        assert_eq!(m.status("DAY"), Some(Status::Pending));
    }

    #[test]
    fn storage_down_keeps_every_row_for_the_next_sweep() {
        let m = Memory::failing(&["exists"]);
        m.insert_row("UP", Status::Uploading, OLD);
        let swept = block_on(sweep(&m, &m, &rules()));
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
        let swept = block_on(sweep(&m, &m, &rules()));
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
        let swept = block_on(sweep(&m, &m, &rules()));
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
        let first = block_on(sweep(&m, &m, &rules()));
        assert_eq!((first.orphans, first.errors), (per_run, 0));
        let stopped = m.cursors.borrow().get(keys::ORIGINALS_PREFIX).cloned();
        assert_eq!(stopped.as_deref(), Some(orphans[per_run - 1].as_str()));
        // New orphans before the cursor wait for the next pass from the start.
        put_aged(&m, "originals/AAAA", OLD);
        let second = block_on(sweep(&m, &m, &rules()));
        assert_eq!(second.orphans, 5);
        assert_eq!(m.cursors.borrow().get(keys::ORIGINALS_PREFIX), None);
        let third = block_on(sweep(&m, &m, &rules()));
        assert_eq!(third.orphans, 1);
        assert!(m.objects.borrow().is_empty());
    }

    #[test]
    fn a_failed_row_lookup_removes_nothing() {
        let m = Memory::failing(&["existing"]);
        put_aged(&m, "originals/MAYBE", OLD);
        let swept = block_on(sweep(&m, &m, &rules()));
        assert_eq!((swept.orphans, swept.errors), (0, 1));
        assert!(m.objects.borrow().contains_key("originals/MAYBE"));
    }

    fn orphans(m: &Memory, n: usize) -> Vec<String> {
        let keys: Vec<String> = (0..n).map(|n| format!("originals/ORPHAN{n:03}")).collect();
        for key in &keys {
            put_aged(m, key, OLD);
        }
        keys
    }

    #[test]
    fn a_database_of_another_bucket_deletes_nothing() {
        let m = Memory::default();
        *m.bucket.borrow_mut() = Some("pixport-staging".into());
        orphans(&m, 3);
        let swept = block_on(sweep(&m, &m, &rules()));
        assert_eq!(swept.orphans, 0);
        assert_eq!(
            swept.refused,
            Some(Refusal::OtherBucket {
                recorded: "pixport-staging".into()
            })
        );
        assert_eq!(m.objects.borrow().len(), 3);
    }

    #[test]
    fn the_first_run_records_its_bucket() {
        let m = Memory::default();
        orphans(&m, 1);
        let swept = block_on(sweep(&m, &m, &rules()));
        assert_eq!((swept.orphans, swept.refused), (1, None));
        assert_eq!(m.bucket.borrow().as_deref(), Some("bucket"));
    }

    #[test]
    fn more_orphans_than_the_limit_deletes_none_and_keeps_the_cursor() {
        let m = Memory::default();
        m.page_keys.set(2);
        orphans(&m, 4);
        let strict = Reconcile {
            max_deletes: 3,
            ..rules()
        };
        let swept = block_on(sweep(&m, &m, &strict));
        assert_eq!(swept.orphans, 0);
        assert_eq!(
            swept.refused,
            Some(Refusal::TooManyOrphans { found: 4, max: 3 })
        );
        assert_eq!(m.objects.borrow().len(), 4);
        assert!(m.cursors.borrow().is_empty());
        let swept = block_on(sweep(&m, &m, &rules()));
        assert_eq!((swept.orphans, swept.refused), (4, None));
    }

    #[test]
    fn a_dry_run_finds_orphans_and_deletes_none() {
        let m = Memory::default();
        orphans(&m, 3);
        let dry = Reconcile {
            mode: Mode::DryRun,
            max_deletes: 1,
            ..rules()
        };
        let swept = block_on(sweep(&m, &m, &dry));
        assert_eq!((swept.orphans, swept.dry_run_orphans), (0, 3));
        assert_eq!(swept.refused, None);
        assert_eq!(m.objects.borrow().len(), 3);
    }

    #[test]
    fn switched_off_it_does_not_even_list() {
        let m = Memory::failing(&["list", "bucket"]);
        orphans(&m, 3);
        let off = Reconcile {
            mode: Mode::Off,
            ..rules()
        };
        let swept = block_on(sweep(&m, &m, &off));
        assert_eq!((swept.orphans, swept.errors), (0, 0));
        assert_eq!(m.objects.borrow().len(), 3);
    }

    #[test]
    fn modes_parse_from_their_names_only() {
        assert_eq!(Mode::parse(""), Some(Mode::On));
        assert_eq!(Mode::parse("on"), Some(Mode::On));
        assert_eq!(Mode::parse("dry-run"), Some(Mode::DryRun));
        assert_eq!(Mode::parse("off"), Some(Mode::Off));
        assert_eq!(Mode::parse("yes"), None);
    }

    #[test]
    fn deletes_count_in_the_budget_and_the_next_run_goes_on_after_them() {
        let m = Memory::default();
        let keys = orphans(&m, 30);
        put_aged(&m, "variants/ORPHANV/320.jpg", OLD);
        // Cursor (2) + one page and its lookups + 10 deletes.
        let tight = Reconcile {
            subrequests: 2 + PAGE_COST + 10,
            ..rules()
        };
        let first = block_on(sweep(&m, &m, &tight));
        // The cursor (2), the listing and its one lookup leave room for 19
        // of the 30 deletes; `variants/` has its own budget: 1 more.
        let fit = tight.subrequests - 4;
        assert_eq!(first.orphans, fit + 1);
        assert!(!m.objects.borrow().contains_key("variants/ORPHANV/320.jpg"));
        let stopped = m.cursors.borrow().get(keys::ORIGINALS_PREFIX).cloned();
        assert_eq!(stopped.as_deref(), Some(keys[fit - 1].as_str()));
        let mut runs = 1;
        while !m.objects.borrow().is_empty() {
            block_on(sweep(&m, &m, &tight));
            runs += 1;
            assert!(runs < 10);
        }
    }

    #[test]
    fn a_tombstone_is_finished_only_once_its_put_has_expired_for_the_grace_period() {
        let m = Memory::default();
        let img = m.insert_row("TOMB", Status::Deleting, OLD);
        put(&m, &img.original_key);
        m.put_expires.borrow_mut().insert("TOMB".into(), -10);
        let swept = block_on(sweep(&m, &m, &rules()));
        assert_eq!(swept.finished_deletes, 0);
        assert_eq!(m.status("TOMB"), Some(Status::Deleting));
        m.put_expires
            .borrow_mut()
            .insert("TOMB".into(), -i64::from(OLD));
        let swept = block_on(sweep(&m, &m, &rules()));
        assert_eq!(swept.finished_deletes, 1);
        assert_eq!(m.status("TOMB"), None);
        assert!(m.objects.borrow().is_empty());
    }

    #[test]
    fn an_abandoned_multipart_upload_is_aborted_with_its_row() {
        let m = Memory::default();
        let img = m.insert_row("PARTS", Status::Uploading, OLD);
        m.uploads
            .borrow_mut()
            .insert(img.original_key.clone(), Default::default());
        let swept = block_on(sweep(&m, &m, &rules()));
        assert_eq!(swept.deleted, 1);
        assert!(m.uploads.borrow().is_empty());
    }
}
