"""Duplicates (issue #16 item 6): the same bytes uploaded again by the same
token give back the existing image and store no second original, on both
upload paths; `?duplicates=allow` keeps a copy. Each test makes bytes of its
own (random pixels) so other tests' uploads are never its duplicates."""

from __future__ import annotations

import base64
import hashlib
import io
import random

import pytest
import requests
from PIL import Image

from support import wait_until

from .test_api import AUTH, assert_error, upload

THRESHOLD = 5 * 1024 * 1024  # wrangler.toml MULTIPART_THRESHOLD_BYTES


@pytest.fixture(scope="module")
def api(stack, worker):
    return worker


def noise(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (w, h), random.randbytes(w * h * 3)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def copies(s3, bucket, sql, data: bytes) -> tuple[int, int]:
    """Rows with these bytes, and originals in S3 holding them."""
    rows = sql.rows("SELECT id FROM images WHERE checksum_sha256 = :s", s=b64sha(data))
    stored = 0
    # Every page: a stack kept between runs holds more than one listing's
    # 1,000 originals.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="originals/"):
        for o in page.get("Contents", []):
            if o["Size"] == len(data) and s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() == data:
                stored += 1
    return len(rows), stored


@pytest.mark.parametrize("size", ["single_put", "multipart"])
def test_same_bytes_again_return_the_existing_image(api, s3, stack, sql, size):
    bucket = stack["PIXPORT_BUCKET"]
    data = noise(64, 48) if size == "single_put" else noise(3600, 2200)
    assert (len(data) > THRESHOLD) == (size == "multipart")
    first = upload(api, data, fields={"title": "first"})
    assert first.status_code == 201, first.text
    assert "pixport-duplicate" not in first.headers

    again = upload(api, data, fields={"title": "second"})
    assert again.status_code == 200, again.text
    assert again.headers["pixport-duplicate"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["title"] == "first"
    assert again.headers["location"] == f"/images/{first.json()['id']}"
    assert copies(s3, bucket, sql, data) == (1, 1)

    kept = requests.post(api.url + "/images", params={"duplicates": "allow"},
                         files={"file": ("x.jpg", data, "image/jpeg")}, headers=AUTH, timeout=120)
    assert kept.status_code == 201, kept.text
    assert kept.json()["id"] != first.json()["id"]
    assert copies(s3, bucket, sql, data) == (2, 2)


def test_direct_upload_of_held_bytes_needs_no_put(api, s3, stack, sql):
    data = noise(80, 60)
    first = upload(api, data)
    assert first.status_code == 201, first.text
    declare = {"content_type": "image/jpeg", "bytes": len(data), "sha256": b64sha(data)}
    r = requests.post(api.url + "/uploads", json=declare, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["pixport-duplicate"] == "true"
    assert r.json()["upload"] is None and r.json()["image"]["id"] == first.json()["id"]
    assert copies(s3, stack["PIXPORT_BUCKET"], sql, data) == (1, 1)

    r = requests.post(api.url + "/uploads", params={"duplicates": "allow"}, json=declare, headers=AUTH, timeout=10)
    assert r.status_code == 201, r.text
    assert r.json()["upload"]["method"] == "PUT"
    assert_error(requests.post(api.url + "/uploads", params={"duplicates": "maybe"}, json=declare, headers=AUTH,
                               timeout=10), 400, "invalid_query")


def test_another_tokens_bytes_are_no_duplicate(stack, sql):
    """Tokens never learn what others hold: the same bytes from another token
    are a new image."""
    from .workerctl import Worker

    w = Worker({"API_TOKENS": "dup-a,dup-b"}).start()
    try:
        data = noise(50, 40)
        post = lambda tok: requests.post(w.url + "/images", files={"file": ("x.jpg", data, "image/jpeg")},
                                         headers={"Authorization": f"Bearer {tok}"}, timeout=60)
        a, b = post("dup-a"), post("dup-b")
        assert (a.status_code, b.status_code) == (201, 201), (a.text, b.text)
        assert a.json()["id"] != b.json()["id"]
    finally:
        w.stop()


@pytest.mark.parametrize("size", ["single_put", "multipart"])
def test_a_double_click_keeps_one_copy(api, s3, stack, sql, size):
    """The same file sent several times at once: every request looks before
    any is stored, so the lookup alone would keep them all. One upload holds
    the (owner, checksum) key (migration 0007); the others wait for it to be
    stored and return it. Every answer names the same image and one copy is
    left, whatever the interleaving."""
    from concurrent.futures import ThreadPoolExecutor

    n = 4 if size == "single_put" else 2
    data = noise(640, 480) if size == "single_put" else noise(3600, 2200)
    assert (len(data) > THRESHOLD) == (size == "multipart")
    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(lambda _: upload(api, data), range(n)))
    assert [a.status_code for a in answers].count(201) == 1, [(a.status_code, a.text) for a in answers]
    assert all(a.status_code == 200 and a.headers["pixport-duplicate"] == "true"
               for a in answers if a.status_code != 201), [a.text for a in answers]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1, ids
    assert copies(s3, stack["PIXPORT_BUCKET"], sql, data) == (1, 1)
    held = sql.rows("SELECT image_id FROM image_checksums WHERE checksum_sha256 = :s", s=b64sha(data))
    assert held == [{"image_id": ids.pop()}], held


def test_a_copy_kept_on_request_is_found_by_the_next_upload(api, s3, stack, sql):
    """`?duplicates=allow` holds nothing itself, but the row it stores is
    recorded when it turns pending (the table's trigger), so a plain upload
    of the same bytes afterwards returns it."""
    data = noise(90, 70)
    kept = upload(api, data, params={"duplicates": "allow"})
    assert kept.status_code == 201, kept.text
    again = upload(api, data)
    assert again.status_code == 200 and again.json()["id"] == kept.json()["id"], again.text
    assert copies(s3, stack["PIXPORT_BUCKET"], sql, data) == (1, 1)


def test_a_deleted_image_frees_its_bytes(api, s3, stack, sql):
    data = noise(70, 50)
    first = upload(api, data)
    assert first.status_code == 201, first.text
    gone = requests.delete(f"{api.url}/images/{first.json()['id']}", headers=AUTH, timeout=30)
    assert gone.status_code == 204, gone.text
    assert sql.rows("SELECT image_id FROM image_checksums WHERE checksum_sha256 = :s", s=b64sha(data)) == []
    again = upload(api, data)
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"], again.text


# A stale hold was taken 120 s ago. A fresh one is dated 60 s ahead: the
# next upload looks at it 50 times, 200 ms apart (edge/src/upload.rs), each
# look a Data API call that can take a good part of a second on a loaded
# 2-core machine, and a hold taken "now" could turn stale (30 s) before
# the last look. Dated ahead, it stays fresh however slow the looks are.
@pytest.mark.parametrize("age_s, answer", [(120, 201), (-60, 409)], ids=["stale", "fresh"])
def test_a_holder_whose_request_died_is_taken_over_after_30_s(api, stack, sql, age_s, answer):
    """A hold whose upload is still `uploading` (its request died between the
    hold and storing) blocks the same bytes for 30 s at most: a fresh one
    makes the next upload wait ~10 s and answer 409 with Retry-After, a
    stale one is taken over and the upload stored."""
    from .test_security import new_id, owner_of
    from .test_api import TOKEN

    data = noise(60, 40)
    dead = new_id()
    sql.rows("INSERT INTO images (id, owner, status, tags, extra, content_type, original_key, checksum_sha256) "
             "VALUES (:id, :owner, 'uploading', '[]', '{}', 'image/jpeg', :key, :sha)",
             id=dead, owner=owner_of(TOKEN), key=f"originals/{dead}", sha=b64sha(data))
    sql.rows("INSERT INTO image_checksums (owner, checksum_sha256, image_id, held_at) "
             "VALUES (:owner, :sha, :id, CURRENT_TIMESTAMP(3) - INTERVAL :age SECOND)",
             owner=owner_of(TOKEN), sha=b64sha(data), id=dead, age=age_s)
    try:
        r = upload(api, data)
        assert r.status_code == answer, r.text
        held = sql.rows("SELECT image_id FROM image_checksums WHERE checksum_sha256 = :s", s=b64sha(data))
        if answer == 201:
            assert held == [{"image_id": r.json()["id"]}], held
        else:
            assert_error(r, 409, "duplicate_in_progress")
            assert r.headers["retry-after"] == "2"
            assert held == [{"image_id": dead}], held
    finally:
        sql.rows("DELETE FROM images WHERE id = :id", id=dead)


def test_the_same_bytes_declared_twice_at_once_get_one_upload(api, s3, stack, sql):
    """POST /uploads declares the hash: of identical declarations at once one
    gets the presigned PUT, the others 409 `duplicate_in_progress` at once
    (the holder's client may take minutes to send). Once the holder's bytes
    are stored, declaring again returns its image."""
    from concurrent.futures import ThreadPoolExecutor

    data = noise(120, 90)
    declare = {"content_type": "image/jpeg", "bytes": len(data), "sha256": b64sha(data)}
    post = lambda _: requests.post(api.url + "/uploads", json=declare, headers=AUTH, timeout=30)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409], [a.text for a in answers]
    for a in answers:
        if a.status_code == 409:
            assert_error(a, 409, "duplicate_in_progress")
            assert a.headers["retry-after"] == "2"
    (first,) = [a.json() for a in answers if a.status_code == 201]
    rows = sql.rows("SELECT id FROM images WHERE checksum_sha256 = :s", s=b64sha(data))
    assert rows == [{"id": first["image"]["id"]}], rows

    put = first["upload"]
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=30).status_code == 200
    # Until the S3 event has made the row `pending` (the shared Lambda, on a
    # cold machine maybe still compiling the module), the bytes are in flight.
    def settled():
        r = post(0)
        return r if r.status_code != 409 else None

    again = wait_until(settled, 180, "the stored upload to end `duplicate_in_progress`", interval=0.5)
    assert again.status_code == 200 and again.headers["pixport-duplicate"] == "true", again.text
    assert again.json()["image"]["id"] == first["image"]["id"]
    assert copies(s3, stack["PIXPORT_BUCKET"], sql, data) == (1, 1)
