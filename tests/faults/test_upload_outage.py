"""Uploads through the worker while the fault stack's S3, Data API or
MariaDB is SIGKILLed: the client gets a clean JSON 503 with `Retry-After`, the sweep
then leaves nothing half-made, and the same upload once the part is back
ends `ready`. (The long version, 200 uploads with each part killed in turn,
is `bench/load/run --faults`.)"""

from __future__ import annotations

import json

import pytest
import requests

from edge.workerctl import Worker
from support import budget, photos_dir, wait_until

from .test_faults import keys, wait_settled

pytestmark = pytest.mark.slow

PHOTO = photos_dir() / "retina.jpg"
AUTH = {"Authorization": "Bearer local-dev-token"}
CODE = {"s3": "storage_unavailable", "dataapi": "database_unavailable", "mariadb": "database_unavailable"}


@pytest.fixture(scope="module")
def worker(faults):
    w = Worker(extra_vars={"S3_ENDPOINT": f"http://{faults.addr['s3']}",
                           "DATA_API_ENDPOINT": f"http://{faults.addr['dataapi']}", "DB_NAME": faults.db_name},
               extra_args=["--test-scheduled"]).start()
    yield w
    w.stop()


def post(worker, body: bytes) -> requests.Response:
    # Each case uploads the same photo once it is back: a second copy, not
    # the first case's image returned as a duplicate.
    return requests.post(worker.url + "/images", params={"duplicates": "allow"},
                         files={"file": ("r.jpg", body, "image/jpeg")}, headers=AUTH, timeout=budget(120))


def sweep_as_if_an_hour_later(faults, worker) -> None:
    """The sweep takes `uploading` rows older than its grace period (an hour,
    counted from creation): age them, then fire the worker's cron."""
    faults.sql("UPDATE images SET created_at = created_at - INTERVAL 2 HOUR, "
               "updated_at = updated_at - INTERVAL 2 HOUR WHERE status = 'uploading'")

    def swept() -> bool:
        if not faults.sql("SELECT id FROM images WHERE status = 'uploading'"):
            return True
        r = requests.get(worker.url + "/__scheduled", params={"cron": "*/30 * * * *"}, timeout=budget(120))
        assert r.status_code == 200, r.text
        return False

    wait_until(swept, 90, "the sweep to settle every `uploading` row", interval=0.5)


@pytest.mark.parametrize("service", ["s3", "dataapi", "mariadb"])
def test_upload_during_outage_is_refused_cleanly_and_leaves_nothing(faults, worker, service):
    body = PHOTO.read_bytes()
    faults.kill(service)
    try:
        r = post(worker, body)
    finally:
        faults.start(service)
    assert r.status_code == 503, r.text
    assert r.headers.get("Retry-After") == "5"
    err = r.json()["error"]
    assert err["code"] == CODE[service]
    assert set(err) == {"code", "message", "request_id"}
    for leak in ("http", "127.0.0.1", "SELECT", "INSERT", "Error:", "connection"):
        assert leak not in err["message"], err["message"]

    sweep_as_if_an_hour_later(faults, worker)
    assert faults.sql("SELECT id FROM images WHERE status = 'uploading'") == []
    rows = {r["id"] for r in faults.sql("SELECT id FROM images")}
    s3 = faults.s3()
    assert {k.split("/")[1] for k in keys(s3, faults.bucket, "originals/")} <= rows

    again = post(worker, body)
    assert again.status_code == 201, again.text
    id_ = again.json()["id"]
    row = wait_settled(faults, [id_])[id_]
    assert row["status"] == "ready", row
    assert {v["key"] for v in json.loads(row["variants"])} == keys(s3, faults.bucket, f"variants/{id_}/")
    assert s3.get_object(Bucket=faults.bucket, Key=f"originals/{id_}")["Body"].read() == body
