"""The cron sweep settles uploads stuck in `uploading` (a crash between steps)
and finishes DELETEs that stopped half way (`deleting`)."""

import pytest
import requests

from support import budget, wait_until

from .workerctl import Worker


@pytest.fixture(scope="module")
def cron_worker(stack):
    w = Worker(extra_args=["--test-scheduled"]).start()
    yield w
    w.stop()


def sweep_until(cron_worker, sql, query: str, iid: str) -> None:
    """Triggers the cron handler, then waits while `query` (with :id) still
    matches (the callers assert what the sweep left)."""
    r = requests.get(cron_worker.url + "/__scheduled", params={"cron": "*/30 * * * *"}, timeout=budget(120))
    assert r.status_code == 200, r.text
    wait_until(lambda: not sql.rows(query, id=iid), 60, f"the sweep to settle {iid}", interval=0.3)


def insert_row(sql, iid: str, status: str, updated_ago: str) -> None:
    sql.rows("DELETE FROM images WHERE id = :id", id=iid)
    sql.rows(
        "INSERT INTO images (id, owner, status, tags, extra, content_type, original_key, updated_at) "
        f"VALUES (:id, 'sweeper', :status, '[]', '{{}}', 'image/jpeg', :key, CURRENT_TIMESTAMP(3) - INTERVAL {updated_ago})",
        id=iid, status=status, key=f"originals/{iid}",
    )


def insert_stale(sql, iid: str) -> None:
    sql.rows(
        "INSERT INTO images (id, owner, status, tags, extra, content_type, original_key, created_at) "
        "VALUES (:id, 'sweeper', 'uploading', '[]', '{}', 'image/jpeg', :key, CURRENT_TIMESTAMP(3) - INTERVAL 2 HOUR)",
        id=iid, key=f"originals/{iid}",
    )


def test_sweep_deletes_orphan_rows_and_revives_landed_uploads(cron_worker, s3, sql, stack):
    orphan, landed, fresh = "00000000000000000000SWEEP1", "00000000000000000000SWEEP2", "00000000000000000000SWEEP3"
    for iid in (orphan, landed, fresh):
        sql.rows("DELETE FROM images WHERE id = :id", id=iid)
    insert_stale(sql, orphan)
    insert_stale(sql, landed)
    sql.rows("INSERT INTO images (id, owner, status, tags, extra, content_type, original_key) "
             "VALUES (:id, 'sweeper', 'uploading', '[]', '{}', 'image/jpeg', :key)", id=fresh, key=f"originals/{fresh}")
    s3.put_object(Bucket=stack["PIXPORT_BUCKET"], Key=f"originals/{landed}", Body=b"\xff\xd8\xff\xd9")

    sweep_until(cron_worker, sql, "SELECT id FROM images WHERE id = :id", orphan)
    status = {r["id"]: r["status"] for r in sql.rows(
        "SELECT id, status FROM images WHERE owner = 'sweeper'")}
    assert orphan not in status
    assert status[landed] in ("pending", "ready", "failed")
    assert status[fresh] == "uploading"
    sql.rows("DELETE FROM images WHERE owner = 'sweeper'")


def test_sweep_finishes_a_half_done_delete(cron_worker, s3, sql, stack):
    bucket = stack["PIXPORT_BUCKET"]
    stuck, recent = "00000000000000000000SWEEP4", "00000000000000000000SWEEP5"
    for iid, age in ((stuck, "2 HOUR"), (recent, "1 MINUTE")):
        insert_row(sql, iid, "deleting", age)
        for key in (f"originals/{iid}", f"variants/{iid}/320.jpg"):
            s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    sweep_until(cron_worker, sql, "SELECT id FROM images WHERE id = :id", stuck)

    def keys(iid):
        return [o["Key"] for p in ("originals/", "variants/")
                for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{p}{iid}").get("Contents", [])]

    assert not sql.rows("SELECT id FROM images WHERE id = :id", id=stuck)
    assert keys(stuck) == []
    # A DELETE that may still be running is left alone.
    assert sql.rows("SELECT status FROM images WHERE id = :id", id=recent) == [{"status": "deleting"}]
    assert len(keys(recent)) == 2
    sql.rows("DELETE FROM images WHERE owner = 'sweeper'")
    for key in keys(recent):
        s3.delete_object(Bucket=bucket, Key=key)


def test_sweep_gives_up_on_pending_rows_that_were_never_resized(cron_worker, sql):
    stale, recent = "00000000000000000000SWEEP6", "00000000000000000000SWEEP7"
    # The Lambda's redrive retries pending rows for hours, touching them each
    # attempt; only a row untouched for a day has no attempt running at all.
    for iid, age in ((stale, "25 HOUR"), (recent, "2 HOUR")):
        insert_row(sql, iid, "pending", age)
    sweep_until(cron_worker, sql, "SELECT id FROM images WHERE id = :id AND status = 'pending'", stale)
    rows = {r["id"]: r for r in sql.rows(
        "SELECT id, status, failure_reason FROM images WHERE owner = 'sweeper'")}
    assert rows[stale]["status"] == "failed"
    assert rows[stale]["failure_reason"].startswith("timeout:")
    assert rows[recent]["status"] == "pending"
    sql.rows("DELETE FROM images WHERE owner = 'sweeper'")
