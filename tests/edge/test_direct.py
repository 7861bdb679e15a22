"""Issue 13 item 4: direct uploads (`POST /uploads`). The presigned PUT only
creates (`If-None-Match: *` signed in, honoured by the local S3), what a PUT
recreates after a DELETE is removed by the sweep's reconciler, the Lambda
stores the type the bytes proved and holds the image to every limit, not
only its size."""

from __future__ import annotations

import base64
import hashlib
import io

import pytest
import requests
from PIL import Image

from stack.stackctl import ensure_stack
from support import wait_until

from .test_api import AUTH, jpeg
from .test_sweep import cron_worker, run_sweep, sweep_until  # noqa: F401  (fixture)


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
    # The URL is still valid and the key is free again: the PUT lands, but
    # the row stays as a tombstone while the URL may be used...
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=30).status_code == 200
    key = f"originals/{iid}"
    assert s3.head_object(Bucket=bucket, Key=key)
    assert tombstone(sql, iid)
    # ...and once it has expired (for the grace period) the sweep removes both.
    expire(sql, iid)
    run_sweep(cron_worker)
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 0
    assert sql.rows("SELECT id FROM images WHERE id = :id", id=iid) == []


def tombstone(sql, iid: str) -> bool:
    """Whether the row is a tombstone: `deleting`, its PUT still valid."""
    rows = sql.rows("SELECT status, upload_expires_at > CURRENT_TIMESTAMP(3) AS live FROM images WHERE id = :id",
                    id=iid)
    return rows == [{"status": "deleting", "live": 1}]


def expire(sql, iid: str) -> None:
    """Moves a tombstone's clocks two hours back, as if its URL had expired."""
    sql.rows("UPDATE images SET upload_expires_at = CURRENT_TIMESTAMP(3) - INTERVAL 2 HOUR, "
             "updated_at = CURRENT_TIMESTAMP(3) - INTERVAL 2 HOUR WHERE id = :id", id=iid)


def params_upload(w, data: bytes) -> tuple[dict, str]:
    r = requests.get(w.url + "/s3/params", params={"filename": "p.jpg", "type": "image/jpeg",
                                                   "metadata[size]": str(len(data))}, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    put = r.json()
    return put, put["key"].removeprefix("originals/")


@pytest.mark.parametrize("route", ["/uploads", "/s3/params"])
def test_a_delete_before_the_put_leaves_a_tombstone_until_the_url_expires(route, cron_worker, s3, sql, stack):  # noqa: F811
    """DELETE of an upload whose presigned PUT is still valid: the PUT can
    still store the original, so the row stays (`deleting`, hidden, counted
    in the quota) until the URL has expired; then the sweep removes the
    object with it."""
    bucket = stack["PIXPORT_BUCKET"]
    data = jpeg(64, 48)
    if route == "/uploads":
        body = direct(cron_worker, data, "image/jpeg")
        put, iid = body["upload"], body["image"]["id"]
    else:
        put, iid = params_upload(cron_worker, data)
    r = requests.delete(f"{cron_worker.url}/images/{iid}", headers=AUTH, timeout=30)
    assert r.status_code == 204, r.text
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=30).status_code == 200
    key = f"originals/{iid}"
    assert s3.head_object(Bucket=bucket, Key=key)
    assert tombstone(sql, iid)
    assert requests.get(f"{cron_worker.url}/images/{iid}", timeout=10).status_code == 404
    # While the URL is valid the sweep leaves it.
    run_sweep(cron_worker)
    assert tombstone(sql, iid)
    expire(sql, iid)
    run_sweep(cron_worker)
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 0
    assert sql.rows("SELECT id FROM images WHERE id = :id", id=iid) == []


def test_a_part_url_is_signed_for_its_exact_length(worker, s3, stack):
    """A part URL carries its part's length (5 MiB parts, the last the
    remainder of the declared size), so S3 refuses a part of any other
    size, and there is no part past the last."""
    from .test_sweep import sign_part, start_multipart

    made = start_multipart(worker, 1)
    assert made["partSize"] == 5 * 1024 * 1024
    url = sign_part(worker, made, 1).json()["url"]
    off_by_one = requests.put(url, data=b"\xff\xff", timeout=30)
    assert off_by_one.status_code == 403 and "SignatureDoesNotMatch" in off_by_one.text, off_by_one.text[:300]
    try:
        big = requests.put(url, data=b"\xff" * (20 * 1024 * 1024), timeout=120)
        assert big.status_code == 403 and "SignatureDoesNotMatch" in big.text, big.text[:300]
    except requests.ConnectionError:
        pass  # refused before the body was read; the listing below shows nothing stored
    assert requests.put(url, data=b"\xff", timeout=30).status_code == 200
    past = sign_part(worker, made, 2)
    assert past.status_code == 400 and past.json()["error"]["code"] == "invalid_field", past.text
    parts = s3.list_parts(Bucket=stack["PIXPORT_BUCKET"], Key=made["key"], UploadId=made["uploadId"])
    assert [p["Size"] for p in parts["Parts"]] == [1]

    mib = 1024 * 1024
    made = start_multipart(worker, 12 * mib)
    assert sign_part(worker, made, 4).status_code == 400
    for n, size in ((1, 5 * mib), (3, 2 * mib)):
        url = sign_part(worker, made, n).json()["url"]
        assert requests.put(url, data=b"\0" * (size + 1), timeout=120).status_code == 403
        assert requests.put(url, data=b"\0" * size, timeout=120).status_code == 200
    for m in (made,):
        requests.delete(f"{worker.url}/s3/multipart/{m['uploadId']}", params={"key": m["key"]}, headers=AUTH,
                        timeout=30)


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


def test_a_direct_uploads_tags_list_it_before_and_after_its_resize(worker, sql):
    """A declared upload's fields are final at its declaration: its tags
    are indexed with its row, so `?tag=` finds it as soon as it is listed,
    not only after an edit."""
    data = jpeg(320, 240)
    tag = "direct-" + base64.b32encode(hashlib.sha256(data + b"tag").digest()[:5]).decode().lower()
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    r = requests.post(worker.url + "/uploads", params={"duplicates": "allow"},
                      json={"content_type": "image/jpeg", "bytes": len(data), "sha256": sha,
                            "tags": [tag, "both"]},
                      headers=AUTH, timeout=10)
    assert r.status_code == 201, r.text
    body = r.json()
    iid = body["image"]["id"]
    indexed = sql.rows("SELECT tag FROM image_tags WHERE image_id = :id ORDER BY tag", id=iid)
    assert [t["tag"] for t in indexed] == ["both", tag]
    put = body["upload"]
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=30).status_code == 200
    assert settled(sql, iid)["status"] == "ready"
    listed = requests.get(worker.url + "/images", params={"tag": tag}, headers=AUTH, timeout=10)
    assert listed.status_code == 200, listed.text
    assert [i["id"] for i in listed.json()["items"]] == [iid]
