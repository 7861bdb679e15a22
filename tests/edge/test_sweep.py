"""The cron sweep settles uploads stuck in `uploading` (a crash between steps)."""

import time

import pytest
import requests

from .workerctl import Worker


@pytest.fixture(scope="module")
def cron_worker(stack):
    w = Worker(extra_args=["--test-scheduled"]).start()
    yield w
    w.stop()


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

    r = requests.get(cron_worker.url + "/__scheduled", params={"cron": "*/30 * * * *"}, timeout=30)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sql.rows("SELECT id FROM images WHERE id = :id", id=orphan):
        time.sleep(0.3)
    status = {r["id"]: r["status"] for r in sql.rows(
        "SELECT id, status FROM images WHERE owner = 'sweeper'")}
    assert orphan not in status
    assert status[landed] in ("pending", "ready", "failed")
    assert status[fresh] == "uploading"
    sql.rows("DELETE FROM images WHERE owner = 'sweeper'")
