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
    for o in s3.list_objects_v2(Bucket=bucket, Prefix="originals/").get("Contents", []):
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
