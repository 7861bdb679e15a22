"""The cron sweep settles uploads stuck in `uploading` (a crash between steps)
and finishes DELETEs that stopped half way (`deleting`)."""

import os
import time
from pathlib import Path

import botocore.exceptions
import pytest
import requests

from support import budget, wait_until

from .test_api import AUTH
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


# The reconciler: refusals, dry run, off switch (docs/security.md).

def sweep_log(w, since: int) -> str:
    return w.log_path.read_bytes()[since:].decode(errors="replace")


def run_sweep(w) -> str:
    """Triggers the half-hourly cron and waits for its "sweep done" line;
    returns what the worker logged meanwhile."""
    since = w.log_path.stat().st_size
    r = requests.get(w.url + "/__scheduled", params={"cron": "*/30 * * * *"}, timeout=120)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = sweep_log(w, since)
        if "sweep done" in text:
            return text
        time.sleep(0.3)
    raise AssertionError(f"no sweep finished:\n{sweep_log(w, since)[-3000:]}")


def plant_orphans(s3, sql, stack, n: int) -> list[str]:
    """`n` originals with no row, older than the grace period; the cursors
    reset so this run's listing starts at the first key. Their ids sort
    before every real one (a timestamp of about 0), so the first page of
    the listing holds them however many originals a kept stack has."""
    from .test_security import new_id

    bucket = stack["PIXPORT_BUCKET"]
    keys = [f"originals/00{new_id()[2:]}" for _ in range(n)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"orphan")
        path = Path(stack["PIXPORT_S3_ROOT"]) / bucket / key
        two_hours_ago = time.time() - 7200
        os.utime(path, (two_hours_ago, two_hours_ago))
    sql.rows("DELETE FROM sweep_cursors")
    return keys


def present(s3, stack, keys: list[str]) -> list[str]:
    bucket = stack["PIXPORT_BUCKET"]
    return [k for k in keys if s3.list_objects_v2(Bucket=bucket, Prefix=k).get("KeyCount", 0)]


def scheduled_worker(**vars_):
    return Worker(vars_, extra_args=["--test-scheduled"]).start()


@pytest.fixture(scope="module")
def guarded_cron(stack):
    w = scheduled_worker(RECONCILE_MAX_DELETES="2")
    yield w
    w.stop()


def test_the_reconciler_logs_each_key_it_deletes(cron_worker, s3, sql, stack):
    keys = plant_orphans(s3, sql, stack, 2)
    log = run_sweep(cron_worker)
    assert present(s3, stack, keys) == []
    for key in keys:
        assert key in log and "removed an object whose image has no row" in log


def test_the_reconciler_refuses_a_database_of_another_bucket(cron_worker, s3, sql, stack):
    run_sweep(cron_worker)  # records the bucket, if no run has yet
    assert sql.rows("SELECT bucket FROM sweep_bucket") == [{"bucket": stack["PIXPORT_BUCKET"]}]
    keys = plant_orphans(s3, sql, stack, 1)
    sql.rows("UPDATE sweep_bucket SET bucket = 'pixport-production'")
    try:
        log = run_sweep(cron_worker)
    finally:
        sql.rows("UPDATE sweep_bucket SET bucket = :b", b=stack["PIXPORT_BUCKET"])
    assert "the database belongs to another bucket" in log
    assert present(s3, stack, keys) == keys
    run_sweep(cron_worker)
    assert present(s3, stack, keys) == []


def test_the_reconciler_refuses_more_orphans_than_its_limit(guarded_cron, s3, sql, stack):
    keys = plant_orphans(s3, sql, stack, 3)
    log = run_sweep(guarded_cron)
    assert "more objects without a row than RECONCILE_MAX_DELETES" in log
    assert present(s3, stack, keys) == keys
    # No cursor moved: the next run (after an operator looked) sees the same.
    assert sql.rows("SELECT after_key FROM sweep_cursors WHERE after_key IS NOT NULL") == []
    for key in keys:
        s3.delete_object(Bucket=stack["PIXPORT_BUCKET"], Key=key)


@pytest.mark.parametrize("mode", ["dry-run", "off"])
def test_a_dry_run_or_the_off_switch_deletes_nothing(mode, s3, sql, stack):
    w = scheduled_worker(RECONCILE_MODE=mode)
    try:
        keys = plant_orphans(s3, sql, stack, 2)
        log = run_sweep(w)
    finally:
        w.stop()
    assert present(s3, stack, keys) == keys
    if mode == "dry-run":
        for key in keys:
            assert key in log
        assert "dry run: would remove an object whose image has no row" in log
    else:
        assert "reconciler off" in log and keys[0] not in log
    for key in keys:
        s3.delete_object(Bucket=stack["PIXPORT_BUCKET"], Key=key)


# Uploads abandoned or deleted while their presigned URLs are live.

def start_multipart(w, size: int) -> dict:
    r = requests.post(w.url + "/s3/multipart", json={"filename": "p.jpg", "type": "image/jpeg",
                                                     "metadata": {"size": str(size)}}, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def sign_part(w, made: dict, n: int):
    return requests.get(f"{w.url}/s3/multipart/{made['uploadId']}/{n}", params={"key": made["key"]},
                        headers=AUTH, timeout=30)


def open_uploads(s3, stack, key: str) -> list[str]:
    out = s3.list_multipart_uploads(Bucket=stack["PIXPORT_BUCKET"], Prefix=key)
    return [u["UploadId"] for u in out.get("Uploads", []) if u["Key"] == key]


def test_an_abandoned_multipart_upload_is_aborted_with_its_row(cron_worker, s3, sql, stack):
    made = start_multipart(cron_worker, 3)
    key, iid = made["key"], made["key"].removeprefix("originals/")
    part = sign_part(cron_worker, made, 1)
    assert part.status_code == 200, part.text
    assert requests.put(part.json()["url"], data=b"abc", timeout=30).status_code == 200
    assert open_uploads(s3, stack, key) == [made["uploadId"]]
    sql.rows("UPDATE images SET created_at = CURRENT_TIMESTAMP(3) - INTERVAL 2 HOUR WHERE id = :id", id=iid)
    run_sweep(cron_worker)
    assert sql.rows("SELECT id FROM images WHERE id = :id", id=iid) == []
    assert open_uploads(s3, stack, key) == []


def test_deleting_a_multipart_upload_aborts_it(cron_worker, s3, sql, stack):
    made = start_multipart(cron_worker, 3)
    key, iid = made["key"], made["key"].removeprefix("originals/")
    part = sign_part(cron_worker, made, 1).json()["url"]
    assert requests.put(part, data=b"abc", timeout=30).status_code == 200
    r = requests.delete(f"{cron_worker.url}/images/{iid}", headers=AUTH, timeout=30)
    assert r.status_code == 204, r.text
    assert open_uploads(s3, stack, key) == []
    # A part URL signed before the DELETE stores nothing after it.
    assert requests.put(part, data=b"abc", timeout=30).status_code == 404
    assert sql.rows("SELECT id FROM images WHERE id = :id", id=iid) == []


def test_an_original_the_reconciler_deletes_stays_restorable(cron_worker, s3, sql, stack, local_stack):
    """The bucket is versioned (deploy/template.yaml): whatever the reconciler
    deletes, by design or by a bug, becomes a noncurrent version behind a
    delete marker that an operator can read back; no role may read or
    delete a version (docs/security.md, "Least privilege")."""
    bucket = stack["PIXPORT_BUCKET"]
    [key] = plant_orphans(s3, sql, stack, 1)
    body = b"an original only the version history still holds " + key.encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    path = Path(stack["PIXPORT_S3_ROOT"]) / bucket / key
    os.utime(path, (time.time() - 7200, time.time() - 7200))
    log = run_sweep(cron_worker)
    assert key in log and present(s3, stack, [key]) == []

    listed = s3.list_object_versions(Bucket=bucket, Prefix=key)
    [marker] = listed["DeleteMarkers"]
    assert marker["Key"] == key and marker["IsLatest"] is True
    [kept] = [v for v in listed["Versions"] if v["Key"] == key]
    assert kept["IsLatest"] is False and kept["Size"] == len(body)
    assert s3.get_object(Bucket=bucket, Key=key, VersionId=kept["VersionId"])["Body"].read() == body
    # The roles cannot read, list or delete the history.
    worker = local_stack.s3_client("worker")
    for call in (lambda: worker.get_object(Bucket=bucket, Key=key, VersionId=kept["VersionId"]),
                 lambda: worker.list_object_versions(Bucket=bucket, Prefix=key),
                 lambda: worker.delete_object(Bucket=bucket, Key=key, VersionId=kept["VersionId"])):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "AccessDenied"
    # Restored by an operator: the version's bytes written back.
    s3.put_object(Bucket=bucket, Key=key, Body=s3.get_object(
        Bucket=bucket, Key=key, VersionId=kept["VersionId"])["Body"].read())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    s3.delete_object(Bucket=bucket, Key=key)

