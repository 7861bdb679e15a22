"""Issue 13 item 4: direct uploads (`POST /uploads`). The presigned PUT only
creates (`If-None-Match: *` signed in, honoured by the local S3), what a PUT
recreates after a DELETE is removed by the sweep's reconciler, the Lambda
stores the type the bytes proved and holds the image to every limit, not
only its size."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import time
from pathlib import Path

import requests
from PIL import Image

from stack.stackctl import ensure_stack
from support import wait_until

from .test_api import AUTH, jpeg
from .test_sweep import cron_worker, sweep_until  # noqa: F401  (fixture)


def direct(api, data: bytes, content_type: str) -> dict:
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    # Fixed test pictures come back on every run against a kept stack: a new
    # image each time, not the last run's returned as a duplicate.
    r = requests.post(api.url + "/uploads", params={"duplicates": "allow"},
                      json={"content_type": content_type, "bytes": len(data), "sha256": sha},
                      headers=AUTH, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def settled(sql, iid: str, budget_s: float = 180) -> dict:
    """The row once the shared Lambda has settled it (on a cold machine its
    first resize waits for the bootstrap to compile the module)."""
    def row():
        rows = sql.rows("SELECT status, content_type, format, failure_reason FROM images WHERE id = :id", id=iid)
        return rows[0] if rows and rows[0]["status"] in ("ready", "failed") else None

    return wait_until(row, budget_s, f"{iid} to end ready or failed", interval=0.3)


def test_presigned_put_creates_once_and_a_replay_after_delete_is_reconciled(cron_worker, s3, sql, stack):  # noqa: F811
    bucket = stack["PIXPORT_BUCKET"]
    data = jpeg(320, 240)
    body = direct(cron_worker, data, "image/jpeg")
    put, iid = body["upload"], body["image"]["id"]
    assert put["headers"]["if-none-match"] == "*"
    # The condition is signed in: dropping it breaks the signature.
    no_cond = {k: v for k, v in put["headers"].items() if k != "if-none-match"}
    assert requests.put(put["url"], data=data, headers=no_cond, timeout=30).status_code == 403
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=30).status_code == 200
    again = requests.put(put["url"], data=data, headers=put["headers"], timeout=30)
    assert again.status_code == 412 and "PreconditionFailed" in again.text, again.text
    assert settled(sql, iid)["status"] == "ready"

    r = requests.delete(f"{cron_worker.url}/images/{iid}", headers=AUTH, timeout=30)
    assert r.status_code == 204, r.text
    # The URL is still valid and the key is free again: the PUT lands with no row...
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=30).status_code == 200
    key = f"originals/{iid}"
    assert s3.head_object(Bucket=bucket, Key=key)
    # ...and once it is older than the grace period the sweep removes it.
    path = Path(stack["PIXPORT_S3_ROOT"]) / bucket / key
    two_hours_ago = time.time() - 7200
    os.utime(path, (two_hours_ago, two_hours_ago))
    r = requests.get(cron_worker.url + "/__scheduled", params={"cron": "*/30 * * * *"}, timeout=120)
    assert r.status_code == 200, r.text
    wait_until(lambda: s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 0, 60,
               f"the sweep to remove {key}", interval=0.3)
    assert sql.rows("SELECT id FROM images WHERE id = :id", id=iid) == []


def test_the_row_keeps_the_sniffed_type_not_the_declared_one(worker, sql):
    data = jpeg(320, 240)
    body = direct(worker, data, "image/png")  # a JPEG, declared as PNG
    put = body["upload"]
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=30).status_code == 200
    row = settled(sql, body["image"]["id"])
    assert (row["status"], row["format"], row["content_type"]) == ("ready", "jpeg", "image/jpeg")
    r = requests.get(f"{worker.url}/images/{body['image']['id']}", headers=AUTH, timeout=10)
    assert r.json()["content_type"] == "image/jpeg"


def test_the_lambda_holds_direct_uploads_to_the_dimension_limit(worker, sql, stack):
    # The shared stack runs the Lambda with PIXPORT_MAX_IMAGE_DIMENSION=16000
    # (tests/conftest.py), below the resizer's own default of 20000: only a
    # limit handed to the resizer refuses this 16001-pixel-wide PNG.
    buf = io.BytesIO()
    Image.new("RGB", (16001, 8), (200, 10, 10)).save(buf, "PNG")
    data = buf.getvalue()
    body = direct(worker, data, "image/png")
    put = body["upload"]
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=30).status_code == 200
    row = settled(sql, body["image"]["id"])
    assert row["status"] == "failed", row
    assert "over_limits" in (row["failure_reason"] or ""), row


def test_newer_uploads_restart_a_failed_image_only_up_to_the_cap(worker, s3, sql, stack):
    # The shared stack runs the template's PIXPORT_MAX_RESTARTS default (2).
    bucket = stack["PIXPORT_BUCKET"]
    data = b"\xff\xd8\xff\xe0 not really a JPEG"
    body = direct(worker, data, "image/jpeg")
    put, iid = body["upload"], body["image"]["id"]
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=30).status_code == 200

    def state():
        return sql.rows("SELECT status, restarts, event_sequencer FROM images WHERE id = :id", id=iid)[0]

    def wait_for(restarts: int) -> dict:
        def failed():
            s = state()
            return s if s["status"] == "failed" and s["restarts"] == restarts else None

        return wait_until(failed, 120, f"{iid} to fail after {restarts} restarts", interval=0.3, detail=state)

    key = f"originals/{iid}"
    lambda_ = ensure_stack()

    def deliveries() -> list[dict]:
        return lambda_.invocations_for(
            lambda p: isinstance(p, dict) and any(r.get("s3", {}).get("object", {}).get("key") == key
                                                  for r in p.get("Records", [])))

    wait_for(0)
    # Each newer object under the key (a new S3 sequencer) restarts it...
    for n in (1, 2):
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        last = wait_for(n)
    # ...until the cap: then the row stays as it was, once the Lambda has
    # handled the newest object's event (not merely after some seconds).
    handled = len([d for d in deliveries() if d["status"] in ("succeeded", "failed", "dead-lettered")])
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    wait_until(lambda: len([d for d in deliveries() if d["status"] in ("succeeded", "failed", "dead-lettered")])
               > handled, 120, f"the Lambda to handle the event of the newest {key}", interval=0.3)
    assert state() == last


def test_the_upload_pages_single_put_creates_once_too(worker, sql):
    """Uppy's single-request route (`GET /s3/params`) signs the same
    create-only condition: Uppy sends the headers it is given."""
    data = jpeg(320, 240)
    r = requests.get(worker.url + "/s3/params", params={"filename": "p.jpg", "type": "image/jpeg",
                                                        "metadata[size]": str(len(data))}, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    put = r.json()
    assert put["method"] == "PUT" and put["headers"]["if-none-match"] == "*"
    no_cond = {k: v for k, v in put["headers"].items() if k != "if-none-match"}
    assert requests.put(put["url"], data=data, headers=no_cond, timeout=30).status_code == 403
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=30).status_code == 200
    again = requests.put(put["url"], data=data, headers=put["headers"], timeout=30)
    assert again.status_code == 412 and "PreconditionFailed" in again.text, again.text
    iid = put["key"].removeprefix("originals/")
    assert settled(sql, iid)["status"] == "ready"
